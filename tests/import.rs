//! `import`: the repository's curation into this machine's Mixxx. Two real clones with real
//! git-annex between them; the laptop's database is a real SQLite file, compared table by
//! table before and after.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{LAPTOP_ROOT, Laptop, Sandbox, json_of, sample_path, sample_track};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::{MixxxDbBuilder, SchemaEra};

/// Every row of every table: (table, rowid) → column → value.
type Dump = BTreeMap<(String, i64), BTreeMap<String, Sql>>;

fn dump(db: &Path) -> Dump {
    // Read-write, as Mixxx opens it: a hot journal a killed writer left is rolled back here.
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = Dump::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT rowid, * FROM \"{table}\""))
            .unwrap();
        let names: Vec<String> = stmt.column_names().skip(1).map(|s| s.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let rowid: i64 = row.get(0).unwrap();
            let mut cells = BTreeMap::new();
            for (i, name) in names.iter().enumerate() {
                cells.insert(name.clone(), row.get::<_, Sql>(i + 1).unwrap());
            }
            out.insert((table.clone(), rowid), cells);
        }
    }
    out
}

/// What differs between two dumps: (table, rowid, column) → (before, after); a row that
/// appeared or went has column `*`.
fn changes(before: &Dump, after: &Dump) -> BTreeMap<(String, i64, String), (Sql, Sql)> {
    let mut out = BTreeMap::new();
    for (id, row) in before {
        match after.get(id) {
            None => {
                out.insert(
                    (id.0.clone(), id.1, "*".into()),
                    (Sql::Integer(1), Sql::Null),
                );
            }
            Some(new) => {
                for (column, value) in row {
                    if new.get(column) != Some(value) {
                        out.insert(
                            (id.0.clone(), id.1, column.clone()),
                            (value.clone(), new.get(column).cloned().unwrap_or(Sql::Null)),
                        );
                    }
                }
            }
        }
    }
    for id in after.keys().filter(|id| !before.contains_key(*id)) {
        out.insert(
            (id.0.clone(), id.1, "*".into()),
            (Sql::Null, Sql::Integer(1)),
        );
    }
    out
}

fn text(s: &str) -> Sql {
    Sql::Text(s.into())
}

/// A desktop (the sandbox, newest schema) and a laptop of `era` under another music root,
/// both synced once and their git-annex branches exchanged.
fn two_machines(n: usize, era: SchemaEra) -> (Sandbox, Laptop) {
    common::two_machines_of_era(n, era, |_| {})
}

/// The desktop syncs and both exchange the git-annex branch.
fn share(sb: &Sandbox, lap: &Laptop) {
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
}

fn import(lap: &Laptop, sb: &Sandbox, args: &[&str]) -> (i32, String, String) {
    let out = lap.cmd(sb).arg("import").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import_json(lap: &Laptop, sb: &Sandbox, args: &[&str]) -> Value {
    json_of(lap.cmd(sb).args(["import", "--json"]).args(args))
}

fn library_id(lap: &Laptop, i: usize) -> i64 {
    lap.dj().track_id(i)
}

fn crate_id(db: &Path, name: &str) -> Option<i64> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT id FROM crates WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .ok()
}

/// The desktop edits of the main scenario (tracks of a sandbox with at least 8).
fn desktop_edits(sb: &Sandbox) {
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.set_column(2, "color", Sql::Integer(0x00FF00));
    sb.set_column(4, "color", Sql::Null);
    sb.add_to_crate(1, "Peak Time");
    sb.remove_from_crate(2, "Warm up");
    sb.add_to_crate(5, "Deep/Dub");
    sb.set_column(3, "title", text("Nouveau Titre ☃"));
    sb.set_column(0, "comment", text(""));
    sb.set_column(6, "bpm", Sql::Real(128.5));
    sb.set_column(7, "key_id", Sql::Integer(13));
}

/// The cells the desktop edits become in the laptop's database (library ids resolved).
fn expected_changes(
    lap: &Laptop,
    bpm_written: bool,
) -> BTreeMap<(String, i64, String), (Sql, Sql)> {
    let lib = |i: usize, column: &str, before: Sql, after: Sql| {
        (
            (
                "library".to_string(),
                library_id(lap, i),
                column.to_string(),
            ),
            (before, after),
        )
    };
    let mut expected: BTreeMap<_, _> = [
        lib(1, "rating", Sql::Integer(1), Sql::Integer(5)),
        lib(2, "color", Sql::Integer(0x224466), Sql::Integer(0x00FF00)),
        lib(4, "color", Sql::Integer(0x4488CC), Sql::Null),
        lib(3, "title", text("Title 3"), text("Nouveau Titre ☃")),
        lib(0, "comment", text("comment 0"), text("")),
        lib(7, "key", text("Am"), text("Cm")),
        lib(7, "key_id", Sql::Integer(8), Sql::Integer(13)),
    ]
    .into_iter()
    .collect();
    if bpm_written {
        let (k, v) = lib(6, "bpm", Sql::Real(106.0), Sql::Real(128.5));
        expected.insert(k, v);
    }
    expected
}

/// The rows `expected_changes` leaves out: the new crate and the memberships.
fn assert_crate_rows(
    lap: &Laptop,
    got: &mut BTreeMap<(String, i64, String), (Sql, Sql)>,
    before: &Dump,
    after: &Dump,
) {
    let peak = crate_id(&lap.db, "Peak Time").expect("the crate was created");
    let new_crate = got
        .remove(&("crates".to_string(), peak, "*".to_string()))
        .expect("one new crate row");
    assert_eq!(new_crate.1, Sql::Integer(1));
    let row = &after[&("crates".to_string(), peak)];
    assert_eq!(row["name"], text("Peak Time"));
    assert_eq!(
        row["count"],
        Sql::Integer(0),
        "count stays 0, as Mixxx leaves it"
    );
    assert_eq!(row["show"], Sql::Integer(1));
    assert_eq!(row["locked"], Sql::Integer(0));
    assert_eq!(row["autodj_source"], Sql::Integer(0));
    // The crates table's AUTOINCREMENT counter moves with the new crate.
    got.retain(|(table, _, _), _| table != "sqlite_sequence");

    let members = |dump: &Dump| -> Vec<(i64, i64)> {
        let mut m: Vec<(i64, i64)> = dump
            .iter()
            .filter(|((t, _), _)| t == "crate_tracks")
            .map(|(_, row)| match (&row["crate_id"], &row["track_id"]) {
                (Sql::Integer(c), Sql::Integer(t)) => (*c, *t),
                other => panic!("{other:?}"),
            })
            .collect();
        m.sort();
        m
    };
    let (old, new) = (members(before), members(after));
    let deep = crate_id(&lap.db, "Deep/Dub").unwrap();
    let warm_up = crate_id(&lap.db, "Warm up").unwrap();
    let added: Vec<_> = new.iter().filter(|m| !old.contains(m)).copied().collect();
    let removed: Vec<_> = old.iter().filter(|m| !new.contains(m)).copied().collect();
    let mut want_added = vec![(peak, library_id(lap, 1)), (deep, library_id(lap, 5))];
    want_added.sort();
    assert_eq!(added, want_added);
    assert_eq!(removed, vec![(warm_up, library_id(lap, 2))]);
    got.retain(|(table, _, _), _| table != "crate_tracks");
}

#[test]
fn desktop_edits_arrive_in_the_laptop_exactly_and_nothing_else_changes() {
    let (sb, lap) = two_machines(8, SchemaEra::Mixxx23);
    desktop_edits(&sb);
    share(&sb, &lap);

    let before = dump(&lap.db);
    let (code, out, err) = import(&lap, &sb, &[]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("Imported 8 files into Mixxx (8 tracks, 10 field changes)."),
        "{out}"
    );
    assert!(
        out.contains("Backup of the Mixxx database first: "),
        "{out}"
    );
    assert!(out.contains("rating: 1 → 5"), "{out}");
    assert!(out.contains("crate: +\"Peak Time\""), "{out}");
    assert!(out.contains("comment: removed"), "{out}");
    let after = dump(&lap.db);

    let mut got = changes(&before, &after);
    assert_crate_rows(&lap, &mut got, &before, &after);
    assert_eq!(
        got,
        expected_changes(&lap, true),
        "exactly the edited cells changed"
    );

    // One backup, holding the database as it was.
    let backups: Vec<PathBuf> = walk(&lap.repo.join(".git/music-commander/mixxx-backups"));
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(dump(&backups[0]), before);

    // Both sides agree now: the laptop's next sync writes nothing, status shows nothing.
    let head = lap.annex_ref();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["to_write"], 0, "{doc}");
    assert_eq!(doc["counts"]["incoming"], 0, "{doc}");
    assert_eq!(doc["counts"]["conflicts"], 0, "{doc}");
    assert_eq!(lap.annex_ref(), head, "no commit");
    let status = lap.status_json(&sb);
    assert_eq!(
        status["counts"],
        serde_json::json!({"outgoing": 0, "incoming": 0, "conflicts": 0})
    );
    // A second import has nothing to do and writes nothing, not even a backup.
    let again = std::fs::read(&lap.db).unwrap();
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["to_import"], 0, "{doc}");
    assert_eq!(doc["backup"], Value::Null);
    assert_eq!(std::fs::read(&lap.db).unwrap(), again);
    assert_eq!(
        walk(&lap.repo.join(".git/music-commander/mixxx-backups")).len(),
        1
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_schema_era_gets_the_edits_its_columns_hold() {
    for era in SchemaEra::ALL {
        let (sb, lap) = two_machines(8, era);
        desktop_edits(&sb);
        share(&sb, &lap);
        let before = dump(&lap.db);
        let doc = import_json(&lap, &sb, &[]);
        let after = dump(&lap.db);
        let mut got = changes(&before, &after);
        assert_crate_rows(&lap, &mut got, &before, &after);
        // From revision 39 (Mixxx 2.4) on, Mixxx reads the BPM only from a beat grid.
        let bpm_written = era.revision() < 39;
        assert_eq!(got, expected_changes(&lap, bpm_written), "{era:?}");
        let unwritable = doc["unwritable"].as_array().unwrap();
        if bpm_written {
            assert!(unwritable.is_empty(), "{era:?}: {doc}");
        } else {
            assert_eq!(unwritable.len(), 1, "{era:?}: {doc}");
            assert_eq!(unwritable[0]["field"], "bpm");
            assert_eq!(unwritable[0]["values"], serde_json::json!(["128.50"]));
            assert!(
                unwritable[0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("beat grid"),
                "{doc}"
            );
        }
        // What was written is agreed; what was not stays incoming, and nothing goes out.
        let next = lap.sync_json(&sb, &[]);
        assert_eq!(next["files"]["to_write"], 0, "{era:?}: {next}");
        assert_eq!(
            next["counts"]["incoming"],
            if bpm_written { 0 } else { 1 },
            "{era:?}"
        );
    }
}

#[test]
fn a_dry_run_changes_nothing_not_even_a_backup() {
    let (sb, lap) = two_machines(8, SchemaEra::Mixxx23);
    desktop_edits(&sb);
    share(&sb, &lap);
    let db = std::fs::read(&lap.db).unwrap();
    // The base and the backups (the read caches beside them may be refreshed, as by any
    // read).
    let state = || {
        walk(&lap.repo.join(".git/music-commander"))
            .into_iter()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("base-") || p.to_string_lossy().contains("mixxx-backups")
            })
            .map(|p| (std::fs::read(&p).unwrap(), p))
            .collect::<Vec<_>>()
    };
    let saved = state();
    assert!(!saved.is_empty(), "the laptop has a base");
    let doc = import_json(&lap, &sb, &["--dry-run"]);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["files"]["to_import"], 8, "{doc}");
    assert_eq!(doc["files"]["imported"], 0, "{doc}");
    assert_eq!(doc["backup"], Value::Null);
    let rating = &doc["incoming"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["paths"][0] == sample_path(1))
        .unwrap()["fields"]["rating"];
    assert_eq!(rating["mixxx"], serde_json::json!(["1"]));
    assert_eq!(rating["repo"], serde_json::json!(["5"]));
    let (code, out, _) = import(&lap, &sb, &["-n"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Would import 8 files into Mixxx (10 field changes)."),
        "{out}"
    );
    assert!(
        out.contains("Incoming (an import writes them into this Mixxx):"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&lap.db).unwrap(),
        db,
        "the database, byte for byte"
    );
    assert_eq!(state(), saved, "no backup, no base change");
}

#[test]
fn a_running_mixxx_is_refused_and_the_database_untouched() {
    let (sb, lap) = two_machines(4, SchemaEra::Mixxx23);
    sb.set_column(1, "rating", Sql::Integer(5));
    share(&sb, &lap);
    let db = std::fs::read(&lap.db).unwrap();
    let name = common::mixxx_process_name();
    let fake = sb.tmp.path().join(&name);
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut mixxx = std::process::Command::new(&fake).arg("60").spawn().unwrap();
    // The kernel names the process at exec.
    std::thread::sleep(Duration::from_millis(200));
    let (code, out, err) = import(&lap, &sb, &[]);
    mixxx.kill().unwrap();
    mixxx.wait().unwrap();
    assert_eq!(code, 2, "{err}\n{out}");
    assert!(err.contains("Mixxx is running (process"), "{err}");
    assert!(err.contains("hint: quit Mixxx (File › Exit)"), "{err}");
    assert_eq!(std::fs::read(&lap.db).unwrap(), db);
    assert!(walk(&lap.repo.join(".git/music-commander/mixxx-backups")).is_empty());
    // Closed, the same import goes through.
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
}

#[test]
fn a_locked_database_is_refused_with_exit_2() {
    let (sb, lap) = two_machines(4, SchemaEra::Mixxx23);
    sb.set_column(1, "rating", Sql::Integer(5));
    share(&sb, &lap);
    let holder = rusqlite::Connection::open(&lap.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (code, _, err) = import(&lap, &sb, &[]);
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is locked"), "{err}");
}

/// Kills `import` while its transaction is open (the debug build's pause) and at random
/// moments of whole runs: the database is always either as before or fully imported.
#[test]
fn sigkill_during_import_leaves_the_database_before_or_fully_imported() {
    let (sb, lap) = two_machines(8, SchemaEra::Mixxx23);
    desktop_edits(&sb);
    share(&sb, &lap);
    let original = std::fs::read(&lap.db).unwrap();
    let state_dir = lap.repo.join(".git/music-commander");
    let saved_state: Vec<(PathBuf, Vec<u8>)> = walk(&state_dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    let restore = || {
        let _ = std::fs::remove_file(lap.db.with_extension("sqlite-journal"));
        std::fs::write(&lap.db, &original).unwrap();
        let _ = std::fs::remove_dir_all(&state_dir);
        for (p, bytes) in &saved_state {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
    };
    let before = dump(&lap.db);
    // The fully imported state, from a run left alone.
    restore();
    let started = Instant::now();
    let status = lap.std_cmd(&sb).arg("import").output().unwrap();
    let full_run = started.elapsed();
    assert!(status.status.success());
    let imported = dump(&lap.db);
    assert_ne!(imported, before);

    // Inside the transaction, for certain: the journal exists while it is open.
    restore();
    let journal = PathBuf::from(format!("{}-journal", lap.db.display()));
    let mut child = lap
        .std_cmd(&sb)
        .arg("import")
        .env("MUSIC_COMMANDER_TEST_PAUSE_IN_WRITE_MS", "5000")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !journal.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(journal.exists(), "the write transaction never started");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(dump(&lap.db), before, "killed mid-transaction: rolled back");

    // At random moments of real runs.
    let mut rng = common::Rng::new(common::seed("IMPORT_KILL_SEED"));
    for round in 0..6 {
        restore();
        let delay = Duration::from_millis(rng.below(full_run.as_millis() as usize + 50) as u64);
        let mut child = lap
            .std_cmd(&sb)
            .arg("import")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        let now = dump(&lap.db);
        assert!(
            now == before || now == imported,
            "round {round}, killed after {delay:?}: a partial import"
        );
    }
    // Whatever happened, running it again finishes the job.
    let status = lap.std_cmd(&sb).arg("import").output().unwrap();
    assert!(status.status.success());
    assert_eq!(dump(&lap.db), imported);
}

#[test]
fn values_mixxx_cannot_hold_are_listed_with_the_reason_and_not_written() {
    let (sb, lap) = two_machines(6, SchemaEra::Mixxx23);
    let set = |path: String, field: &str| {
        sb.git(&["annex", "metadata", "-q", "-s", field, &path]);
    };
    set(sample_path(1), "rating=7");
    set(sample_path(2), "color=red");
    set(sample_path(3), "rating=3");
    set(sample_path(3), "rating+=4");
    set(sample_path(4), "crate+=Two  Spaces");
    set(sample_path(5), "key=Q#");
    sb.annex_sync();
    lap.annex_sync();
    let before = dump(&lap.db);
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(dump(&lap.db), before, "nothing importable: {doc}");
    let reasons: BTreeMap<(String, String), String> = doc["unwritable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                (
                    u["paths"][0].as_str().unwrap().to_string(),
                    u["field"].as_str().unwrap().to_string(),
                ),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |i: usize, field: &str| reasons.get(&(sample_path(i), field.to_string())).cloned();
    assert_eq!(
        reason(1, "rating").as_deref(),
        Some("\"7\" is not a value Mixxx can store here")
    );
    assert_eq!(
        reason(2, "color").as_deref(),
        Some("\"red\" is not a value Mixxx can store here")
    );
    assert!(
        reason(4, "crate").unwrap().contains("not a crate name"),
        "{doc}"
    );
    assert_eq!(
        reason(5, "key").as_deref(),
        Some("\"Q#\" is not a value Mixxx can store here")
    );
    // Two ratings are a conflict: left alone, and with --prefer repo not representable.
    assert_eq!(reason(3, "rating"), None, "{doc}");
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    let (_, text, _) = import(&lap, &sb, &[]);
    assert!(
        text.contains("Not importable (left as they are in this Mixxx):"),
        "{text}"
    );
    assert!(
        text.contains("      rating: 7: \"7\" is not a value Mixxx can store here\n"),
        "{text}"
    );
    assert!(
        text.starts_with("Nothing importable into Mixxx.\n"),
        "{text}"
    );
    assert!(text.contains("1 conflict left alone"), "{text}");
    let doc = import_json(&lap, &sb, &["--prefer", "repo"]);
    assert_eq!(dump(&lap.db), before, "{doc}");
    let two = doc["unwritable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["paths"][0] == sample_path(3))
        .expect("two ratings listed");
    assert_eq!(two["values"], serde_json::json!(["3", "4"]));
    assert_eq!(two["reason"], "2 values, Mixxx holds one");
}

#[test]
fn prefer_repo_writes_conflicts_and_prefer_mixxx_leaves_them_for_sync() {
    let (sb, lap) = two_machines(4, SchemaEra::Mixxx23);
    sb.set_column(2, "rating", Sql::Integer(5));
    lap.set_column(2, "rating", Sql::Integer(3));
    share(&sb, &lap);
    let id = library_id(&lap, 2);
    let rating = || -> i64 {
        rusqlite::Connection::open(&lap.db)
            .unwrap()
            .query_row("SELECT rating FROM library WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    assert_eq!(rating(), 3, "a conflict is left alone");
    let doc = import_json(&lap, &sb, &["--prefer", "mixxx"]);
    assert_eq!(doc["files"]["imported"], 0, "{doc}");
    assert_eq!(rating(), 3);
    let (_, text, _) = import(&lap, &sb, &["--prefer", "mixxx"]);
    assert!(
        text.contains("`sync --prefer mixxx` sends this Mixxx's"),
        "{text}"
    );

    let doc = import_json(&lap, &sb, &["--prefer", "repo"]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(rating(), 5);
    let head = lap.annex_ref();
    let next = lap.sync_json(&sb, &[]);
    assert_eq!(next["files"]["to_write"], 0, "{next}");
    assert_eq!(next["counts"]["conflicts"], 0, "settled: {next}");
    assert_eq!(lap.annex_ref(), head);
}

#[test]
fn a_key_beside_a_key_analysis_is_not_written() {
    let (sb, lap) = two_machines(4, SchemaEra::Mixxx23);
    sb.set_column(1, "key_id", Sql::Integer(13));
    sb.set_column(2, "key_id", Sql::Integer(14));
    lap.set_column(1, "keys_version", text("KeyMap-1.0"));
    lap.set_column(1, "keys", Sql::Blob(vec![0x08, 0x02]));
    share(&sb, &lap);
    let doc = import_json(&lap, &sb, &[]);
    let unwritable = doc["unwritable"].as_array().unwrap();
    assert_eq!(unwritable.len(), 1, "{doc}");
    assert_eq!(unwritable[0]["paths"][0], sample_path(1));
    assert!(
        unwritable[0]["reason"]
            .as_str()
            .unwrap()
            .contains("key analysis")
    );
    let key = |i: usize| -> (String, i64) {
        rusqlite::Connection::open(&lap.db)
            .unwrap()
            .query_row(
                "SELECT key, key_id FROM library WHERE id = ?1",
                [library_id(&lap, i)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    assert_eq!(key(1), ("Am".to_string(), 2), "left as it was");
    assert_eq!(
        key(2),
        ("C#m".to_string(), 14),
        "no analysis: text and id written"
    );
}

#[test]
fn only_the_selected_paths_are_imported() {
    let (sb, lap) = two_machines(6, SchemaEra::Mixxx23);
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.set_column(2, "rating", Sql::Integer(5));
    share(&sb, &lap);
    let doc = import_json(&lap, &sb, &[&sample_path(1)]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    let status = lap.status_json(&sb);
    assert_eq!(status["counts"]["incoming"], 1, "{status}");
    assert_eq!(status["incoming"][0]["paths"][0], sample_path(2));
}

/// Replaces the sandbox's temp dir with `[TMP]`.
fn normalise(text: &str, sb: &Sandbox) -> String {
    let base = sb.tmp.path().canonicalize().unwrap();
    text.replace(base.to_str().unwrap(), "[TMP]")
}

macro_rules! snap {
    ($value:expr, @$snapshot:literal) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
            (r"mixxx-backups/[0-9a-f]{16}/\d{8}T\d{6}Z-\d{3}-", "mixxx-backups/[HASH]/[STAMP]-"),
            (r#""elapsed_seconds": [0-9.e-]+"#, r#""elapsed_seconds": [N]"#),
            (r"elapsed\s+[0-9.]+s", "elapsed [SECS]"),
        ]}, {
            insta::assert_snapshot!($value, @$snapshot);
        })
    };
}

#[test]
fn import_json_shape() {
    let (sb, lap) = two_machines(2, SchemaEra::Mixxx23);
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.add_to_crate(1, "Peak Time");
    sb.git(&[
        "annex",
        "metadata",
        "-q",
        "-s",
        "color=red",
        &sample_path(0),
    ]);
    share(&sb, &lap);
    let out = lap.cmd(&sb).args(["import", "--json"]).output().unwrap();
    assert!(out.status.success());
    snap!(normalise(&String::from_utf8_lossy(&out.stdout), &sb), @r#"
    {
      "dry_run": false,
      "tracks": 2,
      "files": {
        "to_import": 1,
        "imported": 1,
        "unchanged": 0,
        "incoming": 2,
        "conflicts": 0,
        "outgoing": 0,
        "duplicates": 0
      },
      "tracks_written": 1,
      "fields_written": 2,
      "backup": "[TMP]/laptop/.git/music-commander/mixxx-backups/[HASH]/[STAMP]-import.sqlite",
      "crates_created": [
        "Peak Time"
      ],
      "counts": {
        "outgoing": 0,
        "incoming": 3,
        "conflicts": 0
      },
      "incoming": [
        {
          "paths": [
            "Daft Punk/Album 0/0000 Track.flac"
          ],
          "key": "SHA256E-s8--696c4d4dc59b253ef5dfb4973bebf40b45d659896b7a3183ab241a96dc1bbf24.flac",
          "fields": {
            "color": {
              "direction": "incoming",
              "mixxx": [],
              "repo": [
                "red"
              ],
              "base": []
            }
          }
        },
        {
          "paths": [
            "Röyksopp/Album 1/0001 Track.flac"
          ],
          "key": "SHA256E-s8--7a5f5af4f748b09c874e0a68b17546a1ba1ca00a2d72669694ab5aa04af2ca2a.flac",
          "fields": {
            "crate": {
              "direction": "incoming",
              "mixxx": [
                "Festival"
              ],
              "repo": [
                "Festival",
                "Peak Time"
              ],
              "base": [
                "Festival"
              ]
            },
            "rating": {
              "direction": "incoming",
              "mixxx": [
                "1"
              ],
              "repo": [
                "5"
              ],
              "base": [
                "1"
              ]
            }
          }
        }
      ],
      "conflicts": [],
      "duplicates": [],
      "unwritable": [
        {
          "paths": [
            "Daft Punk/Album 0/0000 Track.flac"
          ],
          "key": "SHA256E-s8--696c4d4dc59b253ef5dfb4973bebf40b45d659896b7a3183ab241a96dc1bbf24.flac",
          "field": "color",
          "values": [
            "red"
          ],
          "reason": "\"red\" is not a value Mixxx can store here"
        }
      ],
      "skipped": {
        "removed-from-mixxx": 0,
        "outside-root": 0,
        "not-in-repository": 0,
        "not-annexed": 0,
        "key-not-utf8": 0
      },
      "skipped_tracks": [],
      "elapsed_seconds": [N]
    }
    "#);
}

#[test]
fn every_track_on_one_content_is_written() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    // A second file with the content of sample 0: one git-annex key, two paths.
    let copy = "Copy/0000 Track.flac";
    std::fs::create_dir_all(sb.repo.join("Copy")).unwrap();
    std::fs::write(sb.repo.join(copy), "audio 0\n").unwrap();
    sb.git(&["annex", "add", "-q", "--force-large", copy]);
    sb.git(&["commit", "-q", "-m", "a copy"]);
    sb.sync_json(&[]);
    let lap = Laptop::clone_of(&sb, 3);
    std::fs::remove_file(&lap.db).unwrap();
    let mut builder = MixxxDbBuilder::new(SchemaEra::Mixxx23);
    builder.tracks = (0..3)
        .map(|i| sample_track(Path::new(LAPTOP_ROOT), i))
        .collect();
    let mut twin = sample_track(Path::new(LAPTOP_ROOT), 0);
    twin.location = format!("{LAPTOP_ROOT}/{copy}").into_bytes();
    builder.tracks.push(twin);
    let ids = builder.build(&lap.db).unwrap();
    lap.annex_sync();
    assert_eq!(lap.sync_json(&sb, &[])["files"]["written"], 0);

    sb.set_column(0, "rating", Sql::Integer(4));
    share(&sb, &lap);
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(doc["tracks_written"], 2, "{doc}");
    let conn = rusqlite::Connection::open(&lap.db).unwrap();
    for id in [ids[0], ids[3]] {
        let rating: i64 = conn
            .query_row("SELECT rating FROM library WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rating, 4, "track {id}");
    }
    assert_eq!(lap.sync_json(&sb, &[])["files"]["to_write"], 0);
}

#[test]
fn the_mixxx_process_name_comes_from_the_config_file_too() {
    let (sb, lap) = two_machines(3, SchemaEra::Mixxx23);
    sb.set_column(1, "rating", Sql::Integer(5));
    share(&sb, &lap);
    let name = format!("mc-cfg-{}", std::process::id() % 100_000);
    let config = sb.tmp.path().join("config.toml");
    std::fs::write(&config, format!("[mixxx]\nprocess_name = \"{name}\"\n")).unwrap();
    let fake = sb.tmp.path().join(&name);
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut mixxx = std::process::Command::new(&fake).arg("60").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let db = std::fs::read(&lap.db).unwrap();
    let out = lap
        .cmd(&sb)
        .env_remove("MUSIC_COMMANDER_MIXXX_PROCESS")
        .arg("--config")
        .arg(&config)
        .arg("import")
        .output()
        .unwrap();
    mixxx.kill().unwrap();
    mixxx.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{name:?}")), "{err}");
    assert!(!err.contains("unknown config"), "{err}");
    assert_eq!(std::fs::read(&lap.db).unwrap(), db);
}

#[test]
fn an_edit_made_here_is_left_for_sync_and_survives_the_import() {
    let (sb, lap) = two_machines(3, SchemaEra::Mixxx23);
    sb.add_to_crate(1, "Remote");
    lap.add_to_crate(1, "Local");
    lap.set_column(2, "rating", Sql::Integer(4));
    share(&sb, &lap);
    let head = lap.annex_ref();
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(doc["files"]["outgoing"], 2, "{doc}");
    assert_eq!(lap.annex_ref(), head, "import never writes the repository");
    let conn = rusqlite::Connection::open(&lap.db).unwrap();
    let crates: Vec<String> = conn
        .prepare("SELECT c.name FROM crate_tracks ct JOIN crates c ON c.id = ct.crate_id WHERE ct.track_id = ?1 ORDER BY c.name")
        .unwrap()
        .query_map([library_id(&lap, 1)], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(crates, ["Festival", "Local", "Remote"]);
    // The laptop's own edits go out with its next sync, the imported crate does not go back.
    let sent = lap.sync_json(&sb, &[]);
    assert_eq!(sent["files"]["written"], 2, "{sent}");
    let change = sent["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["paths"][0] == sample_path(1))
        .unwrap();
    assert_eq!(
        change["set"]["crate"],
        serde_json::json!(["Festival", "Local", "Remote"])
    );
    assert_eq!(
        change["fields"]["crate"]["base"],
        serde_json::json!(["Festival", "Remote"])
    );
    assert_eq!(lap.sync_json(&sb, &[])["files"]["to_write"], 0);
}
