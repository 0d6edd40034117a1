//! Fail safe where real users trip (issue 11): two syncs at once, adjusted branches, names
//! that differ only in Unicode normalisation, a WAL database in a read-only folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Sandbox, sample_path, sample_track};
use serde_json::Value;
use testutils::annex_repo;
use testutils::mixxx_db::{FixtureTrack, MixxxDbBuilder, SchemaEra};

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("music-commander")
}

/// The binary as `Sandbox::cmd` runs it, as a plain `Command` that can run in the background.
fn background_sync(sb: &Sandbox, wait_ms: u64) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(&sb.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env("MUSIC_COMMANDER_LOCK_WAIT_MS", wait_ms.to_string())
        .arg("--mixxx-db")
        .arg(&sb.db)
        .args(["sync", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Subjects of the sync commits on the git-annex branch.
fn sync_commits(sb: &Sandbox) -> Vec<String> {
    sb.git(&["log", "--format=%s", "refs/heads/git-annex"])
        .lines()
        .filter(|s| s.starts_with("music-commander sync"))
        .map(String::from)
        .collect()
}

fn lock_file(sb: &Sandbox) -> PathBuf {
    sb.repo.join(".git/music-commander/lock")
}

/// A lock file as a run holding it writes one.
fn write_lock(sb: &Sandbox, pid: u32, start: &str) {
    let path = lock_file(sb);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!("pid={pid}\nstarttime={start}\nholder=sync\nsince=1764622800\n"),
    )
    .unwrap();
}

/// Field 22 of /proc/<pid>/stat: the process start time in clock ticks since boot.
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(19).unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// Two syncs at once

#[test]
fn a_second_sync_waits_for_the_first_and_writes_nothing_it_wrote() {
    let n = 400;
    let sb = Sandbox::new(n, SchemaEra::Newest);
    let first = background_sync(&sb, 120_000).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let second = background_sync(&sb, 120_000).spawn().unwrap();
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let mut written = Vec::new();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        written.push(doc["files"]["written"].as_u64().unwrap());
    }
    written.sort();
    assert_eq!(
        written,
        vec![0, n as u64],
        "one run writes, the other finds it done"
    );
    assert_eq!(sync_commits(&sb).len(), 1, "one sync commit");
    assert!(!lock_file(&sb).exists(), "the lock is released");
}

#[test]
fn a_held_lock_times_out_with_an_error_and_nothing_is_written() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    let me = std::process::id();
    write_lock(&sb, me, &start_time(me));
    let before = sb.annex_ref();

    let out = background_sync(&sb, 300).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr
            .matches("waiting for another music-commander sync")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {me}")), "{stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    assert_eq!(sb.annex_ref(), before, "nothing written");
    assert!(lock_file(&sb).exists(), "another run's lock is left alone");

    // Reading needs no lock.
    let (code, _, err) = sb.sync(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let status = sb.cmd().arg("status").output().unwrap();
    assert!(status.status.success());
}

#[test]
fn a_stale_lock_is_taken_over() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    // A process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    write_lock(&sb, pid, "1");
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 3);
    assert!(!lock_file(&sb).exists());

    // A live pid that another process had when it took the lock (pid reuse).
    sb.set_column(0, "rating", rusqlite::types::Value::Integer(1));
    let me = std::process::id();
    write_lock(&sb, me, "1");
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1);
    assert!(!lock_file(&sb).exists());
}

// ---------------------------------------------------------------------------------------
// Adjusted branches

/// Syncs `sb` after dropping file 1's content and entering `git annex adjust MODE`; the
/// result equals a sync of the same library on the original branch.
fn adjusted_sync_matches_the_original_branch(mode: &str) {
    let n = 4;
    let control = Sandbox::new(n, SchemaEra::Newest);
    control.git(&["annex", "drop", "-q", "--force", &sample_path(1)]);
    let expected = control.sync_json(&[]);
    assert_eq!(expected["files"]["written"], n as u64);

    let sb = Sandbox::new(n, SchemaEra::Newest);
    sb.git(&["annex", "drop", "-q", "--force", &sample_path(1)]);
    sb.git(&["annex", "adjust", mode]);
    let head = sb.git(&["symbolic-ref", "HEAD"]);
    assert!(head.starts_with("refs/heads/adjusted/"), "{head}");
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["skipped"], expected["skipped"], "{mode}: {doc}");
    assert_eq!(doc["files"]["written"], n as u64, "{mode}: {doc}");
    // A second run agrees (through the key cache).
    let again = sb.sync_json(&[]);
    assert_eq!(again["files"]["unchanged"], n as u64, "{mode}: {again}");

    sb.git(&["checkout", "-q", "main"]);
    assert_eq!(sb.metadata(), control.metadata(), "{mode}");
}

#[test]
fn adjusted_hide_missing_syncs_absent_files() {
    adjusted_sync_matches_the_original_branch("--hide-missing");
}

#[test]
fn adjusted_unlock_syncs_like_the_original_branch() {
    adjusted_sync_matches_the_original_branch("--unlock");
}

#[test]
fn adjusted_fix_syncs_like_the_original_branch() {
    adjusted_sync_matches_the_original_branch("--fix");
}

#[test]
fn adjusted_lock_syncs_like_the_original_branch() {
    adjusted_sync_matches_the_original_branch("--lock");
}

// ---------------------------------------------------------------------------------------
// NFC / NFD twins

#[test]
fn names_differing_only_in_normalisation_are_two_files() {
    let nfc = "Caf\u{e9}.flac";
    let nfd = "Cafe\u{301}.flac";
    let sb = Sandbox::with_tracks(0, SchemaEra::Newest, |repo| {
        [(nfc, 2), (nfd, 5)]
            .into_iter()
            .map(|(name, rating)| FixtureTrack {
                location: repo.join(name).into_os_string().into_encoded_bytes(),
                title: Some(format!("{name} title")),
                rating: Some(rating),
                ..Default::default()
            })
            .collect()
    });
    annex_repo::add_files(
        &sb.repo,
        &[
            (Path::new(nfc), b"composed".as_slice()),
            (Path::new(nfd), b"decomposed".as_slice()),
        ],
    )
    .unwrap();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["conflicts"], 0, "{doc}");
    assert_eq!(doc["files"]["written"], 2, "{doc}");
    let meta = sb.metadata();
    assert_eq!(meta[nfc]["rating"], vec!["2"]);
    assert_eq!(meta[nfd]["rating"], vec!["5"]);
    assert_eq!(meta[nfd]["title"], vec![format!("{nfd} title")]);
}

/// Only the NFD file exists, Mixxx spells it NFC (or the other way round): still found.
#[test]
fn a_name_in_the_other_normalisation_is_still_found() {
    for (file, mixxx) in [
        ("Cafe\u{301}.flac", "Caf\u{e9}.flac"),
        ("Caf\u{e9}.flac", "Cafe\u{301}.flac"),
    ] {
        let sb = Sandbox::with_tracks(0, SchemaEra::Newest, |repo| {
            vec![FixtureTrack {
                location: repo.join(mixxx).into_os_string().into_encoded_bytes(),
                rating: Some(4),
                ..Default::default()
            }]
        });
        annex_repo::add_files(&sb.repo, &[(Path::new(file), b"audio".as_slice())]).unwrap();
        let doc = sb.sync_json(&[]);
        assert_eq!(doc["files"]["written"], 1, "{doc}");
        assert_eq!(sb.metadata()[file]["rating"], vec!["4"]);
    }
}

// ---------------------------------------------------------------------------------------
// WAL mode in a read-only place

#[test]
fn a_wal_database_in_a_read_only_folder_is_read() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(2, SchemaEra::Newest);
    let folder = sb.home.join("readonly");
    std::fs::create_dir_all(&folder).unwrap();
    let db = folder.join("mixxxdb.sqlite");
    let mut builder = MixxxDbBuilder::new(SchemaEra::Newest);
    builder.tracks = (0..2).map(|i| sample_track(&sb.repo, i)).collect();
    builder.build(&db).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    assert!(!folder.join("mixxxdb.sqlite-wal").exists());
    let bytes = std::fs::read(&db).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();

    // As root every folder is writable.
    let out = sb
        .unprivileged_cmd()
        .arg("--mixxx-db")
        .arg(&db)
        .args(["sync", "--dry-run", "--json"])
        .output()
        .unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["files"]["to_write"], 2, "{doc}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the database is unchanged"
    );
    let mut left: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, vec!["mixxxdb.sqlite"]);
}

/// With a `-wal` file the main file alone is stale, so it is not read: the error names the
/// cause.
#[test]
fn a_wal_database_with_pending_writes_in_a_read_only_folder_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    conn.execute_batch("PRAGMA wal_autocheckpoint=0; UPDATE library SET rating = 1;")
        .unwrap();
    // A copy taken while the writer is connected: the update lives only in the -wal file.
    let folder = sb.home.join("readonly");
    std::fs::create_dir_all(&folder).unwrap();
    let db = folder.join("mixxxdb.sqlite");
    std::fs::copy(&sb.db, &db).unwrap();
    std::fs::copy(
        sb.db.with_extension("sqlite-wal"),
        folder.join("mixxxdb.sqlite-wal"),
    )
    .unwrap();
    drop(conn);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = sb
        .unprivileged_cmd()
        .arg("--mixxx-db")
        .arg(&db)
        .args(["sync", "--dry-run"])
        .output()
        .unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("WAL mode"), "{stderr}");
    assert!(stderr.contains("-wal file holds writes"), "{stderr}");
}

/// A repository this user may read but not write: a sync with nothing to write still
/// succeeds (there is no lock to take where nothing can be written).
#[test]
fn a_sync_with_nothing_to_write_needs_no_writable_repository() {
    if unsafe { libc::geteuid() } != 0 {
        return; // the repository is this user's own: it is writable
    }
    let sb = Sandbox::new(2, SchemaEra::Newest);
    sb.sync_json(&[]);
    // The database must be readable by `nobody`; the repository stays root's.
    let out = sb
        .unprivileged_cmd()
        .arg("--mixxx-db")
        .arg(&sb.db)
        .args(["sync", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["files"]["unchanged"], 2, "{doc}");
    assert!(!lock_file(&sb).exists());
}

/// With no git identity the commit fails: the error says what is missing, in one line with a
/// hint. The direct writer has written nothing then, so the next run writes everything; with
/// git-annex's writer the next run commits what git-annex accepted instead of hiding it behind
/// "Nothing to sync".
#[test]
fn a_missing_git_identity_is_named_and_the_journal_is_committed_next_time() {
    for writer in ["direct", "git-annex"] {
        let sb = Sandbox::new(3, SchemaEra::Newest);
        sb.git(&["config", "--unset", "user.email"]);
        sb.git(&["config", "--unset", "user.name"]);
        // Whatever the host name: git must not invent an identity.
        sb.git(&["config", "user.useConfigOnly", "true"]);
        let head = sb.annex_ref();
        let (code, _, err) = sb.sync(&["--writer", writer]);
        assert_eq!(code, 3, "{writer}: {err}");
        let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{err}");
        assert!(error_lines[0].contains("no identity"), "{err}");
        assert!(err.contains("hint: set one: git config"), "{err}");
        assert!(
            !err.contains("commit-tree") && !err.contains("git var"),
            "no internal command line: {err}"
        );
        assert_eq!(sb.annex_ref(), head, "nothing committed");

        sb.git(&["config", "user.email", "dj@example.invalid"]);
        sb.git(&["config", "user.name", "DJ"]);
        let (code, _, err) = sb.sync(&["--writer", writer]);
        assert_eq!(code, 0, "{err}");
        if writer == "git-annex" {
            // Said once (it was printed twice: once as a run warning, once with the plan's).
            assert_eq!(err.matches("uncommitted change(s)").count(), 1, "{err}");
        }
        assert_ne!(sb.annex_ref(), head, "{writer}: written now");
        let journal = sb.repo.join(".git/annex/journal");
        let left = std::fs::read_dir(&journal).map_or(0, |d| d.count());
        assert_eq!(left, 0, "journal empty");
        assert_eq!(sb.metadata()[&sample_path(1)]["rating"], vec!["1"]);
    }
}

/// The demo, built in one folder and then moved: every Mixxx location names the old folder.
fn moved_demo() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    assert_cmd::Command::cargo_bin("music-commander")
        .unwrap()
        .env("HOME", tmp.path())
        .arg("demo")
        .arg(&old)
        .assert()
        .success();
    let new = tmp.path().join("new");
    std::fs::rename(&old, &new).unwrap();
    let old_root = old.join("Music").display().to_string();
    (tmp, new.join("Music"), new.join("mixxxdb.sqlite"), old_root)
}

fn run_in(
    repo: &Path,
    home: &Path,
    db: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (i32, String, String) {
    let out = Command::new(binary())
        .current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .envs(env.iter().copied())
        .arg("--mixxx-db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_library_entirely_outside_the_root_is_a_wrong_music_root() {
    let (tmp, repo, db, old_root) = moved_demo();
    for args in [&["sync"][..], &["sync", "-n"], &["status"]] {
        let (code, out, err) = run_in(&repo, tmp.path(), &db, &[], args);
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(&format!("{old_root:?}")), "{args:?}: {err}");
        assert!(
            err.contains(&format!("hint: set mixxx_music_root = {old_root:?}")),
            "{args:?}: {err}"
        );
    }
    // With the root set, it syncs.
    let (code, out, err) = run_in(
        &repo,
        tmp.path(),
        &db,
        &[("MUSIC_COMMANDER_MUSIC_ROOT", &old_root)],
        &["sync", "-n"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn most_of_a_library_outside_the_root_warns() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    let conn = sb.mixxx();
    conn.execute(
        "UPDATE track_locations SET location = '/elsewhere/Music/' || filename, directory = '/elsewhere/Music' WHERE id IN (SELECT id FROM track_locations LIMIT 3)",
        [],
    )
    .unwrap();
    let (code, out, err) = sb.sync(&["-n"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("warning: 3 of 4 Mixxx tracks are outside the music root"),
        "{err}"
    );
    assert!(
        err.contains("hint: set mixxx_music_root = \"/elsewhere/Music\""),
        "{err}"
    );
}

/// A copy of the sandbox's database as an older Mixxx would have it: `sql` drops what that
/// Mixxx lacks, and the schema revision says 28.
fn older_schema(sb: &Sandbox, sql: &str) {
    let conn = sb.mixxx();
    conn.execute_batch(sql).unwrap();
    conn.execute(
        "UPDATE settings SET value = '28' WHERE name = 'mixxx.schema.version'",
        [],
    )
    .unwrap();
}

#[test]
fn a_column_an_older_mixxx_lacks_is_not_a_removal() {
    for (field, sql) in [
        ("color", "ALTER TABLE library DROP COLUMN color"),
        ("rating", "ALTER TABLE library DROP COLUMN rating"),
        ("crate", "DROP TABLE crate_tracks; DROP TABLE crates"),
    ] {
        let sb = Sandbox::new(3, SchemaEra::Newest);
        sb.set_column(0, "color", rusqlite::types::Value::Integer(0xFF0000));
        sb.set_column(0, "rating", rusqlite::types::Value::Integer(4));
        sb.add_to_crate(0, "Peak");
        assert_eq!(sb.sync(&[]).0, 0);
        older_schema(&sb, sql);
        let (code, out, err) = sb.sync(&["-n"]);
        assert_eq!(code, 0, "{field}: {out}\n{err}");
        assert!(
            out.contains("Nothing to sync"),
            "{field}: plans a change: {out}"
        );
        assert!(
            err.contains(&format!("warning: {field} is not synced in this run"))
                && err.contains("schema revision 28"),
            "{field}: {err}"
        );
        assert_eq!(err.matches("warning:").count(), 1, "{err}");
        let json = sb.sync_json(&["-n"]);
        assert_eq!(
            json["changes"].as_array().map_or(0, |a| a.len()),
            0,
            "{json}"
        );
        // Written for real, nothing is removed either.
        assert_eq!(sb.sync(&[]).0, 0);
        let meta = sb.metadata();
        assert!(
            format!("{meta:?}").contains(match field {
                "color" => "#FF0000",
                "rating" => "\"4\"",
                _ => "Peak",
            }),
            "{field}: {meta:?}"
        );
    }
}

#[test]
fn status_without_a_mixxx_database_still_shows_the_records() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    assert_eq!(sb.sync(&[]).0, 0);
    std::fs::remove_file(&sb.db).unwrap();
    let out = sb.cmd().arg("status").output().unwrap();
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{err}");
    assert!(stdout.contains("Mixxx database not found"), "{stdout}");
    assert!(stdout.contains("Last sync of each clone:"), "{stdout}");
    assert!(stdout.contains("[this clone]"), "{stdout}");
    let json = sb.status_json();
    assert_eq!(json["mixxx_db_found"], false, "{json}");
    assert_eq!(json["syncs"].as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn a_relative_mixxx_db_is_recorded_absolute() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let copy = sb.repo.join("..").join("rel.sqlite");
    std::fs::copy(&sb.db, &copy).unwrap();
    let out = Command::new(binary())
        .current_dir(&sb.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &sb.home)
        .args(["--mixxx-db", "../rel.sqlite", "sync"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json = sb.status_json();
    let recorded = json["syncs"][0]["mixxx_db"].as_str().unwrap().to_string();
    assert!(Path::new(&recorded).is_absolute(), "{recorded}");
    assert!(recorded.ends_with("rel.sqlite"), "{recorded}");
}

#[test]
fn status_json_lists_the_skipped_tracks() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    sb.mixxx()
        .execute(
            "UPDATE library SET mixxx_deleted = 1 WHERE id = ?1",
            [sb.track_id(0)],
        )
        .unwrap();
    let json = sb.status_json();
    let skipped = json["skipped_tracks"].as_array().expect("skipped_tracks");
    assert_eq!(skipped.len(), 1, "{json}");
    assert_eq!(skipped[0]["reason"], "removed-from-mixxx", "{json}");
}

#[test]
fn git_annex_generated_year_under_its_own_name_warns() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let (_, _, quiet) = sb.sync(&["-n"]);
    assert!(!quiet.contains("genmetadata"), "{quiet}");
    sb.git(&["config", "annex.genmetadata", "true"]);
    let (code, out, err) = sb.sync(&["-n"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(err.matches("annex.genmetadata").count(), 1, "{err}");
    assert!(err.contains("year = \"mixxx-year\""), "{err}");
    // Renamed, nothing to warn about.
    let config = sb.home.join("c.toml");
    std::fs::write(&config, "[sync.names]\nyear = \"mixxx-year\"\n").unwrap();
    let out = sb
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["sync", "-n"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("genmetadata"));
}

#[test]
fn a_column_with_no_readable_value_is_not_a_removal() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.set_column(0, "color", rusqlite::types::Value::Integer(0xFF0000));
    assert_eq!(sb.sync(&[]).0, 0);
    sb.mixxx()
        .execute("UPDATE library SET color = 'garbled'", [])
        .unwrap();
    let (code, out, err) = sb.sync(&["-n"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Nothing to sync"), "plans a change: {out}");
    assert!(
        err.contains("warning: color is not synced in this run")
            && err.contains("no readable value"),
        "{err}"
    );
}
