//! `backup` and `restore` end to end: real git-annex repositories, real SQLite databases, the
//! binary run as a user runs it.

mod common;

use std::path::Path;

use common::{Laptop, Sandbox, json_of};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::SchemaEra;

/// The default backup path of the sandbox's clone (git-annex description "fixture").
const DESK_PATH: &str = "Mixxx/fixture/mixxxdb.sqlite";

/// Every table's schema and rows, order-independent: two databases with the same dump hold the
/// same data.
fn dump(db: &Path) -> Vec<(String, String, Vec<String>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    tables
        .into_iter()
        .map(|(name, sql)| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, Sql>(i))
                        .collect::<rusqlite::Result<Vec<Sql>>>()
                })
                .unwrap()
                .map(|row| format!("{:?}", row.unwrap()))
                .collect();
            rows.sort();
            (name, sql, rows)
        })
        .collect()
}

/// A process name nothing runs under: the machine running the tests may run a real Mixxx.
const NO_MIXXX: &str = "mc-no-such-mixxx";

fn cmd(sb: &Sandbox) -> assert_cmd::Command {
    let mut cmd = sb.cmd();
    cmd.env("MUSIC_COMMANDER_MIXXX_PROCESS", NO_MIXXX);
    cmd
}

fn laptop_cmd(laptop: &Laptop, sb: &Sandbox) -> assert_cmd::Command {
    let mut cmd = laptop.cmd(sb);
    cmd.env("MUSIC_COMMANDER_MIXXX_PROCESS", NO_MIXXX);
    cmd
}

fn run(cmd: &mut assert_cmd::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut assert_cmd::Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

fn backup(sb: &Sandbox, args: &[&str]) -> String {
    ok(cmd(sb).arg("backup").args(args))
}

fn list_json(cmd: &mut assert_cmd::Command) -> Vec<Value> {
    json_of(cmd.args(["restore", "--list", "--json"]))["backups"]
        .as_array()
        .unwrap()
        .clone()
}

fn commits_of(repo: &Path, path: &str) -> Vec<String> {
    testutils::annex_repo::git(repo, &["log", "--format=%H", "--", path])
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn backup_then_restore_over_a_broken_database_gives_back_identical_tables() {
    for (era, damage) in [
        (SchemaEra::Newest, "garbage"),
        (SchemaEra::Mixxx23, "truncate"),
        (SchemaEra::Mixxx24, "delete"),
    ] {
        let sb = Sandbox::new(12, era);
        let before = dump(&sb.db);
        let out = backup(&sb, &[]);
        assert!(out.contains(DESK_PATH), "{out}");
        assert_eq!(commits_of(&sb.repo, DESK_PATH).len(), 1);
        // The backup is annexed, not a git blob.
        let link = std::fs::read_link(sb.repo.join(DESK_PATH)).unwrap();
        assert!(link.to_string_lossy().contains("annex/objects"), "{link:?}");

        let len = std::fs::metadata(&sb.db).unwrap().len();
        match damage {
            "garbage" => std::fs::write(&sb.db, vec![0x5au8; len as usize]).unwrap(),
            "truncate" => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&sb.db)
                    .unwrap();
                f.set_len(len / 3).unwrap();
            }
            _ => std::fs::remove_file(&sb.db).unwrap(),
        }
        let damaged = std::fs::read(&sb.db).ok();
        let out = ok(cmd(&sb).arg("restore"));
        assert_eq!(dump(&sb.db), before, "{era:?} {damage}: {out}");

        // The broken file was kept, byte for byte, as a local backup.
        let listed = list_json(&mut cmd(&sb));
        let local: Vec<&Value> = listed.iter().filter(|b| b["source"] == "local").collect();
        match damaged {
            Some(bytes) => {
                assert!(out.contains("byte copy"), "{out}");
                assert_eq!(local.len(), 1, "{listed:?}");
                assert_eq!(local[0]["message"], "restore_unreadable");
                assert_eq!(local[0]["restorable"], false);
                let kept = std::fs::read(local[0]["path"].as_str().unwrap()).unwrap();
                assert_eq!(kept, bytes);
                // The newest restorable backup is still the default, not the broken copy.
                assert_eq!(listed[0]["source"], "local");
                ok(cmd(&sb).arg("restore"));
                assert_eq!(dump(&sb.db), before);
                let (code, _, err) =
                    run(cmd(&sb).args(["restore", local[0]["id"].as_str().unwrap()]));
                assert_eq!(code, 2, "{err}");
                assert!(err.contains("is damaged"), "{err}");
                assert_eq!(dump(&sb.db), before, "a damaged backup changes nothing");
            }
            None => assert!(local.is_empty(), "nothing to save: {listed:?}"),
        }
    }
}

#[test]
fn a_healthy_database_is_restored_in_place_and_saved_first() {
    let sb = Sandbox::new(6, SchemaEra::Newest);
    let original = dump(&sb.db);
    backup(&sb, &[]);
    sb.set_column(1, "rating", Sql::Integer(1));
    sb.add_to_crate(2, "Later");
    let edited = dump(&sb.db);
    assert_ne!(edited, original);
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&sb.db).unwrap().ino();
    let out = ok(cmd(&sb).args(["restore", "1"]));
    assert!(out.contains("a snapshot"), "{out}");
    assert_eq!(dump(&sb.db), original);
    assert_eq!(
        std::fs::metadata(&sb.db).unwrap().ino(),
        inode,
        "written in place"
    );
    // The pre-restore snapshot holds the edits and restores them back.
    let listed = list_json(&mut cmd(&sb));
    assert_eq!(listed[0]["source"], "local", "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("local:"), "{id}");
    ok(cmd(&sb).args(["restore", &id]));
    assert_eq!(dump(&sb.db), edited);
}

#[test]
fn backup_works_while_another_connection_reads_or_writes() {
    let sb = Sandbox::new(6, SchemaEra::Newest);
    let committed = dump(&sb.db);
    let reader = sb.mixxx();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM library", [], |r| r.get(0))
        .unwrap();
    // A writer inside its transaction (holding the reserved lock) while the backup runs: the
    // backup holds the committed state, not the half-done write.
    let writer = sb.mixxx();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute("UPDATE library SET rating = 5, comment = 'uncommitted'", [])
        .unwrap();
    let out = backup(&sb, &["-m", "while Mixxx works"]);
    assert!(out.contains("commit"), "{out}");
    reader.execute_batch("COMMIT").unwrap();
    writer.execute_batch("COMMIT").unwrap();
    drop((reader, writer));

    let content = sb.repo.join(DESK_PATH).canonicalize().unwrap();
    assert_eq!(dump(&content), committed);
    assert_eq!(
        testutils::annex_repo::git(&sb.repo, &["log", "-1", "--format=%s"])
            .unwrap()
            .trim(),
        "while Mixxx works"
    );
}

#[test]
fn two_backups_are_two_versions_each_restorable_by_id() {
    let sb = Sandbox::new(6, SchemaEra::Mixxx24);
    let first = dump(&sb.db);
    backup(&sb, &["-m", "first"]);
    // Unchanged: no new version.
    let out = backup(&sb, &["-m", "same again"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(commits_of(&sb.repo, DESK_PATH).len(), 1);

    sb.set_column(0, "rating", Sql::Integer(4));
    sb.set_column(3, "comment", Sql::Text("second version".into()));
    let second = dump(&sb.db);
    // `mixxx backup` is the same command.
    ok(cmd(&sb).args(["mixxx", "backup", "-m", "second"]));
    let commits = commits_of(&sb.repo, DESK_PATH);
    assert_eq!(commits.len(), 2);
    let subjects =
        testutils::annex_repo::git(&sb.repo, &["log", "--format=%s", "--", "Mixxx"]).unwrap();
    assert_eq!(subjects.lines().collect::<Vec<_>>(), ["second", "first"]);

    // Both versions' content stays in the annex.
    let listed = list_json(&mut cmd(&sb));
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|b| b["present"] == true), "{listed:?}");
    let key_of = |commit: &str| {
        listed.iter().find(|b| b["commit"] == commit).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(key_of(&commits[0]), key_of(&commits[1]));

    for (commit, want) in [(&commits[1], &first), (&commits[0], &second)] {
        let id = format!("{}:{DESK_PATH}", &commit[..7]);
        ok(cmd(&sb).args(["restore", &id]));
        assert_eq!(&dump(&sb.db), want, "{id}");
    }
    // A commit prefix alone names its one backup.
    ok(cmd(&sb).args(["restore", &commits[1][..10]]));
    assert_eq!(dump(&sb.db), first);
    // Unknown ids are usage errors naming --list.
    let (code, _, err) = run(cmd(&sb).args(["restore", "deadbeef:nope"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("restore --list"), "{err}");
    let (code, _, err) = run(cmd(&sb).args(["restore", "99"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn restore_list_is_newest_first_with_time_machine_and_message() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    let (code, out, _) = run(cmd(&sb).args(["restore", "--list"]));
    assert_eq!(code, 0);
    assert!(out.contains("No backups yet"), "{out}");
    let (code, _, err) = run(cmd(&sb).arg("restore"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no backup to restore"), "{err}");

    for (i, date) in ["2026-01-01T10:00:00Z", "2026-02-01T10:00:00Z"]
        .iter()
        .enumerate()
    {
        sb.set_column(0, "rating", Sql::Integer(i as i64 + 1));
        ok(cmd(&sb)
            .env("GIT_COMMITTER_DATE", date)
            .args(["backup", "-m", &format!("backup {i}")]));
    }
    // A restore takes a local backup (now: the newest).
    ok(cmd(&sb).args(["restore", "2"]));
    let listed = list_json(&mut cmd(&sb));
    let summary: Vec<(u64, &str, &str, &str, &str)> = listed
        .iter()
        .map(|b| {
            (
                b["number"].as_u64().unwrap(),
                b["source"].as_str().unwrap(),
                b["machine"].as_str().unwrap(),
                b["message"].as_str().unwrap(),
                b["time"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 3, "{listed:?}");
    assert_eq!(summary[0].0, 1);
    assert_eq!(&summary[0].1..=&summary[0].3, &"local"..=&"restore");
    assert_eq!(summary[0].2, "fixture");
    assert_eq!(
        summary[1..],
        [
            (
                2,
                "repository",
                "fixture",
                "backup 1",
                "2026-02-01T10:00:00Z"
            ),
            (
                3,
                "repository",
                "fixture",
                "backup 0",
                "2026-01-01T10:00:00Z"
            ),
        ]
    );
    assert!(summary[0].4 > "2026-02-01T10:00:00Z");
    assert_eq!(listed[1]["path"], DESK_PATH);
    assert_eq!(
        listed[1]["id"].as_str().unwrap(),
        format!(
            "{}:{DESK_PATH}",
            &listed[1]["commit"].as_str().unwrap()[..7]
        )
    );

    let table = ok(cmd(&sb).args(["restore", "--list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("#  time"), "{table}");
    assert!(
        lines[1].starts_with("1  ") && lines[1].contains("local:"),
        "{table}"
    );
    assert!(lines[2].contains("backup 1") && lines[2].contains("2026-02-01T10:00:00Z"));
    assert!(lines[3].contains("backup 0") && lines[3].contains("fixture"));
}

/// A stand-in for Mixxx: a copy of `sleep` under a name no other process has.
fn fake_mixxx(dir: &Path) -> (String, std::process::Child) {
    let name = format!("mcmixxx{}", std::process::id() % 100_000);
    let fake = dir.join(&name);
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let child = std::process::Command::new(&fake).arg("60").spawn().unwrap();
    // The kernel names the process at exec; wait until /proc shows it.
    for _ in 0..100 {
        let seen = std::fs::read_to_string(format!("/proc/{}/comm", child.id()))
            .is_ok_and(|c| c.trim() == name);
        if seen {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (name, child)
}

#[test]
fn restore_is_refused_while_mixxx_runs_and_leaves_the_database_alone() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    backup(&sb, &[]);
    sb.set_column(0, "rating", Sql::Integer(2));
    let bytes = std::fs::read(&sb.db).unwrap();
    let (name, mut child) = fake_mixxx(sb.tmp.path());

    let (code, out, err) = run(cmd(&sb)
        .env("MUSIC_COMMANDER_MIXXX_PROCESS", &name)
        .arg("restore"));
    // The config file's setting counts as well.
    let config = sb.home.join("mc.toml");
    std::fs::write(&config, format!("[mixxx]\nprocess_name = \"{name}\"\n")).unwrap();
    let (code_file, _, err_file) = run(cmd(&sb)
        .env_remove("MUSIC_COMMANDER_MIXXX_PROCESS")
        .arg("--config")
        .arg(&config)
        .arg("restore"));
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Mixxx is running"), "{err}");
    assert!(err.contains("hint: quit Mixxx"), "{err}");
    assert_eq!(code_file, 2, "{err_file}");
    assert_eq!(std::fs::read(&sb.db).unwrap(), bytes);
    // Refused before anything: no local backup either.
    let listed = list_json(&mut cmd(&sb));
    assert!(listed.iter().all(|b| b["source"] != "local"), "{listed:?}");
    // Once it is gone, the restore runs.
    ok(cmd(&sb)
        .env("MUSIC_COMMANDER_MIXXX_PROCESS", &name)
        .arg("restore"));
}

#[test]
fn absent_content_is_fetched_from_the_clone_that_has_it_or_the_hint_says_how() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    let desk = dump(&sb.db);
    backup(&sb, &["-m", "desk backup"]);
    let laptop = Laptop::clone_of(&sb, 4);
    testutils::annex_repo::git(&laptop.repo, &["annex", "sync", "-q", "--no-content"]).unwrap();

    let listed = list_json(&mut laptop_cmd(&laptop, &sb));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["machine"], "fixture");
    assert_eq!(listed[0]["message"], "desk backup");
    assert_eq!(listed[0]["present"], false);
    let table = ok(laptop_cmd(&laptop, &sb).args(["restore", "--list"]));
    assert!(table.contains("content not here"), "{table}");
    let key = listed[0]["key"].as_str().unwrap().to_string();

    // Fetched from origin (the desktop) on restore.
    let (code, out, err) = run(laptop_cmd(&laptop, &sb).args(["restore", "1"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(dump(&laptop.db), desk);

    // Dropped everywhere: a clear error with the way to fetch it, database untouched.
    for repo in [&laptop.repo, &sb.repo] {
        testutils::annex_repo::git(repo, &["annex", "drop", "-q", "--force", "--key", &key])
            .unwrap();
    }
    // (The laptop's database now holds the desktop's locations.)
    laptop
        .dj()
        .mixxx()
        .execute("UPDATE library SET rating = 3", [])
        .unwrap();
    let bytes = std::fs::read(&laptop.db).unwrap();
    let id = listed[0]["id"].as_str().unwrap();
    let (code, out, err) = run(laptop_cmd(&laptop, &sb).args(["restore", id]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains(&format!("backup {id}")), "{err}");
    assert!(
        err.contains(&format!("git annex get --key {key} --from")),
        "{err}"
    );
    assert!(err.contains("git annex sync --content"), "{err}");
    assert_eq!(std::fs::read(&laptop.db).unwrap(), bytes);
}

#[test]
fn backup_commits_only_its_file() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    std::fs::write(sb.repo.join("notes.txt"), "staged, not for the backup\n").unwrap();
    sb.git(&["add", "notes.txt"]);
    // A staged change to a tracked file too.
    sb.git(&["rm", "-q", "--cached", &common::sample_path(1)]);
    backup(&sb, &[]);
    let committed = sb.git(&["show", "--format=", "--name-only", "HEAD"]);
    assert_eq!(committed.trim(), DESK_PATH);
    let staged = sb.git(&["diff", "--cached", "--name-only"]);
    let mut staged: Vec<&str> = staged.lines().collect();
    staged.sort();
    let expected_removed = common::sample_path(1);
    let mut want = vec!["notes.txt", expected_removed.as_str()];
    want.sort();
    assert_eq!(staged, want);
}

#[test]
fn the_backup_path_follows_the_config() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    let out = ok(cmd(&sb)
        .env(
            "MUSIC_COMMANDER_MIXXX_BACKUP_PATH",
            "Backups/{machine}/db.sqlite",
        )
        .arg("backup"));
    assert!(out.contains("Backups/fixture/db.sqlite"), "{out}");
    let listed = list_json(cmd(&sb).env(
        "MUSIC_COMMANDER_MIXXX_BACKUP_PATH",
        "Backups/{machine}/db.sqlite",
    ));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["path"], "Backups/fixture/db.sqlite");
    // A described clone uses its description, made safe for a folder name.
    sb.git(&["annex", "describe", "here", "Studio PC: left/desk"]);
    let out = backup(&sb, &[]);
    assert!(
        out.contains("Mixxx/Studio-PC-left-desk/mixxxdb.sqlite"),
        "{out}"
    );
    let (code, _, err) = run(cmd(&sb)
        .env("MUSIC_COMMANDER_MIXXX_BACKUP_PATH", "../outside.sqlite")
        .arg("backup"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mixxx_backup_path"), "{err}");
}

#[test]
fn a_sync_after_a_restore_does_not_revert_the_repository() {
    let sb = Sandbox::new(8, SchemaEra::Newest);
    sb.sync_json(&[]);
    backup(&sb, &["-m", "before the gig"]);
    // After the backup: a rating, a cleared comment, a crate removed and one added — all
    // synced to the repository.
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.set_column(0, "comment", Sql::Text(String::new()));
    sb.remove_from_crate(1, "Festival");
    sb.add_to_crate(3, "Peak time");
    let synced = sb.sync_json(&[]);
    assert!(
        synced["files"]["written"].as_u64().unwrap() >= 3,
        "{synced}"
    );
    let repo_values = sb.metadata();
    let annex_ref = sb.annex_ref();

    let out = ok(cmd(&sb).args(["restore", "1"]));
    assert!(out.contains("3 files differ from the repository"), "{out}");
    // Mixxx holds the old values again; a sync must not send them.
    let again = sb.sync_json(&[]);
    assert_eq!(again["files"]["written"], 0, "{again}");
    assert_eq!(again["counts"]["outgoing"], 0, "{again}");
    assert_eq!(sb.metadata(), repo_values);
    assert_eq!(sb.annex_ref(), annex_ref, "no commit");
    // They are incoming: what `import` brings back.
    let status = sb.status_json();
    assert_eq!(status["counts"]["outgoing"], 0, "{status}");
    assert_eq!(status["counts"]["conflicts"], 0, "{status}");
    assert!(
        status["counts"]["incoming"].as_u64().unwrap() >= 4,
        "{status}"
    );

    // Editing after the restore goes out as usual.
    sb.set_column(2, "rating", Sql::Integer(1));
    let edited = sb.sync_json(&[]);
    assert_eq!(edited["files"]["written"], 1, "{edited}");
    let file = common::sample_path(2);
    assert_eq!(sb.metadata()[&file]["rating"], vec!["1".to_string()]);
    assert_eq!(
        sb.metadata()[&common::sample_path(1)]["rating"],
        vec!["5".to_string()]
    );
}

#[test]
fn backups_stay_annexed_whatever_the_repository_adds_by_default() {
    // Unlocked files by default, and nothing large by annex.largefiles: a backup is still an
    // annexed file, and the first version's content survives the second.
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.git(&["config", "annex.addunlocked", "true"]);
    sb.git(&["config", "annex.largefiles", "nothing"]);
    let first = dump(&sb.db);
    backup(&sb, &["-m", "one"]);
    sb.set_column(0, "rating", Sql::Integer(5));
    let second = dump(&sb.db);
    backup(&sb, &["-m", "two"]);
    let listed = list_json(&mut cmd(&sb));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|b| b["key"].is_string() && b["present"] == true),
        "{listed:?}"
    );
    let pointer = sb.git(&["show", &format!("HEAD:{DESK_PATH}")]);
    assert!(pointer.starts_with("/annex/objects/"), "{pointer}");
    ok(cmd(&sb).args(["restore", listed[1]["id"].as_str().unwrap()]));
    assert_eq!(dump(&sb.db), first);
    ok(cmd(&sb).args(["restore", listed[0]["id"].as_str().unwrap()]));
    assert_eq!(dump(&sb.db), second);
}

#[test]
fn a_locked_database_is_not_taken_for_a_broken_one() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    backup(&sb, &[]);
    sb.set_column(0, "rating", Sql::Integer(2));
    let bytes = std::fs::read(&sb.db).unwrap();
    let holder = sb.mixxx();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (code, out, err) = run(cmd(&sb).arg("restore"));
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is locked"), "{err}");
    assert_eq!(std::fs::read(&sb.db).unwrap(), bytes);
    let listed = list_json(&mut cmd(&sb));
    assert!(listed.iter().all(|b| b["source"] != "local"), "{listed:?}");
}

#[test]
fn a_backup_taken_while_another_connection_keeps_committing_is_one_consistent_state() {
    let sb = Sandbox::new(40, SchemaEra::Newest);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let db = sb.db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            let mut k = 0i64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                k += 1;
                // Every commit gives every track the same play count: a consistent copy
                // holds one value, a torn one several.
                conn.execute("UPDATE library SET timesplayed = ?1", [k])
                    .unwrap();
                // Busy, but not a tight loop that starves every reader (Mixxx writes in
                // bursts, not continuously).
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            k
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    backup(&sb, &["-m", "under load"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let commits = writer.join().unwrap();
    assert!(commits > 1, "the writer ran");
    let content = sb.repo.join(DESK_PATH).canonicalize().unwrap();
    let copy = rusqlite::Connection::open(&content).unwrap();
    let distinct: i64 = copy
        .query_row("SELECT count(DISTINCT timesplayed) FROM library", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(distinct, 1);
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
