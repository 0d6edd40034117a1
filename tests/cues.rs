//! Cues between two machines: hot cues, loops, the main cue, intro and outro made in one
//! Mixxx arrive in the other's `cues` table with identical columns; edits merge per slot;
//! the analyser's type-8 marker never travels. Real clones, real git-annex, real SQLite.

mod common;

use std::path::Path;

use common::{LAPTOP_ROOT, Laptop, Sandbox, json_of, sample_path};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::SchemaEra;

const N: usize = 4;

/// A desktop (newest schema) and a laptop of `era`, both synced once, branches exchanged.
fn two_machines(era: SchemaEra) -> (Sandbox, Laptop) {
    common::two_machines_of_era(N, era, |_| {})
}

fn conn(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    c
}

/// Inserts a cue row as Mixxx does.
#[allow(clippy::too_many_arguments)]
fn add_cue(
    db: &Path,
    track: i64,
    kind: i64,
    position: f64,
    length: f64,
    hotcue: i64,
    label: &str,
    color: i64,
) -> i64 {
    let c = conn(db);
    c.execute(
        "INSERT INTO cues (track_id, type, position, length, hotcue, label, color) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![track, kind, position, length, hotcue, label, color],
    )
    .unwrap();
    c.last_insert_rowid()
}

/// A track's cue rows without their ids, typed exactly (`quote()` shows the storage class),
/// sorted.
fn cue_rows(db: &Path, track: i64) -> Vec<String> {
    let c = conn(db);
    let mut stmt = c
        .prepare(
            "SELECT quote(type) || ' ' || quote(position) || ' ' || quote(length) || ' ' || quote(hotcue) || ' ' || quote(label) || ' ' || quote(color) FROM cues WHERE track_id = ?1 ORDER BY type, hotcue, position",
        )
        .unwrap();
    stmt.query_map([track], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn cue_ids(db: &Path, track: i64) -> Vec<(i64, i64, i64)> {
    let c = conn(db);
    let mut stmt = c
        .prepare("SELECT id, type, hotcue FROM cues WHERE track_id = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([track], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn import_json(lap: &Laptop, sb: &Sandbox, args: &[&str]) -> Value {
    json_of(lap.cmd(sb).args(["import", "--json"]).args(args))
}

/// The DJ's cues on the desktop's track 1: hot cues 1 and 3 with labels (one hostile) and
/// colors, a saved loop in slot 4, a jump cue in slot 6, the main cue, intro and outro, and
/// the analyser's marker.
fn desktop_cues(sb: &Sandbox) {
    let t = sb.track_id(1);
    let db = &sb.db;
    add_cue(db, t, 1, 5_402_250.0, 0.0, 0, "Drop", 0xC50A08);
    add_cue(
        db,
        t,
        1,
        1_234_567.5,
        0.0,
        2,
        "loop\\ \"x\"\nzwei\t#",
        0x32BE44,
    );
    add_cue(db, t, 4, 2_000_000.0, 705_600.0, 3, "", 0x0044FF);
    add_cue(db, t, 5, 3_000_000.0, -88_200.0, 5, "Back", 0xF8D200);
    add_cue(db, t, 2, 88_200.0, 0.0, -1, "", 0xFF0000);
    add_cue(db, t, 6, 88_200.0, 1_764_000.0, -1, "", 0x0000FF);
    add_cue(db, t, 7, 20_000_000.0, 1_764_000.0, -1, "", 0x0000FF);
    add_cue(db, t, 8, 1234.0, 21_000_000.0, -1, "", 0xFF0000);
    sb.set_column(1, "cuepoint", Sql::Real(88_200.0));
}

#[test]
fn cues_travel_with_identical_columns_into_every_era() {
    for era in SchemaEra::ALL {
        let (sb, lap) = two_machines(era);
        desktop_cues(&sb);
        let doc = sb.sync_json(&[]);
        assert_eq!(doc["files"]["written"], 1, "{era:?}: {doc}");
        let meta = sb.metadata();
        let fields = &meta[&sample_path(1)];
        assert_eq!(
            fields["hotcue-1"],
            vec!["61.250s #C50A08 Drop @5402250".to_string()]
        );
        assert_eq!(
            fields["hotcue-4"],
            vec!["22.676s-30.676s loop #0044FF @2000000+705600".to_string()]
        );
        assert_eq!(
            fields["hotcue-3"],
            vec!["13.997s #32BE44 \\u{6c}oop\\\\ \"x\"\\nzwei\\t# @1234567.5".to_string()]
        );
        assert_eq!(fields["hotcues"], vec!["1", "3", "4", "6"]);
        assert_eq!(
            fields["cue-main"],
            vec!["1.000s #FF0000 @88200".to_string()]
        );
        assert!(fields.contains_key("cue-intro") && fields.contains_key("cue-outro"));
        assert_eq!(fields["cues-mixxx"], vec!["2.4".to_string()]);
        assert_eq!(
            sb.find("hotcues=*"),
            vec![sample_path(1)],
            "git annex find selects the files with hot cues"
        );

        sb.annex_sync();
        lap.annex_sync();
        let doc = import_json(&lap, &sb, &[]);
        assert_eq!(doc["files"]["imported"], 1, "{era:?}: {doc}");
        let (desk, laptop) = (sb.track_id(1), lap.dj().track_id(1));
        let mut expected = cue_rows(&sb.db, desk);
        expected.retain(|r| !r.starts_with("8 "));
        assert_eq!(expected.len(), 7);
        assert_eq!(cue_rows(&lap.db, laptop), expected, "{era:?}");
        let cuepoint: f64 = conn(&lap.db)
            .query_row(
                "SELECT cuepoint FROM library WHERE id = ?1",
                [laptop],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cuepoint, 88_200.0);
        // Nothing left to do either way.
        let doc = lap.sync_json(&sb, &[]);
        assert_eq!(doc["files"]["written"], 0, "{era:?}: {doc}");
        assert_eq!(doc["counts"]["incoming"], 0, "{era:?}: {doc}");
        assert_eq!(doc["counts"]["conflicts"], 0, "{era:?}: {doc}");
    }
}

#[test]
fn cue_edits_merge_per_slot_and_removals_travel() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23);
    desktop_cues(&sb);
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    import_json(&lap, &sb, &[]);
    let (desk, laptop) = (sb.track_id(1), lap.dj().track_id(1));
    let ids_before = cue_ids(&lap.db, laptop);

    // The laptop moves hot cue 1, the desktop moves hot cue 3 and removes the loop (slot 4).
    conn(&lap.db)
        .execute(
            "UPDATE cues SET position = 5402000 WHERE track_id = ?1 AND hotcue = 0",
            [laptop],
        )
        .unwrap();
    conn(&sb.db)
        .execute(
            "UPDATE cues SET position = 1300000, label = 'Vocal' WHERE track_id = ?1 AND hotcue = 2",
            [desk],
        )
        .unwrap();
    conn(&sb.db)
        .execute(
            "DELETE FROM cues WHERE track_id = ?1 AND hotcue = 3",
            [desk],
        )
        .unwrap();
    // The analyser's marker moving is no change.
    conn(&sb.db)
        .execute(
            "UPDATE cues SET length = 1 WHERE track_id = ?1 AND type = 8",
            [desk],
        )
        .unwrap();
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    lap.annex_sync();
    sb.annex_sync();
    let doc = json_of(sb.cmd().args(["import", "--json"]));
    assert_eq!(doc["files"]["imported"], 1, "{doc}");

    let mut desk_rows = cue_rows(&sb.db, desk);
    desk_rows.retain(|r| !r.starts_with("8 "));
    assert_eq!(
        cue_rows(&lap.db, laptop),
        desk_rows,
        "both machines hold both edits"
    );
    assert!(desk_rows.iter().any(|r| r.contains("5402000")));
    assert!(desk_rows.iter().any(|r| r.contains("'Vocal'")));
    assert!(
        !desk_rows.iter().any(|r| r.starts_with("4 ")),
        "the loop is removed"
    );
    let meta = sb.metadata();
    assert!(!meta[&sample_path(1)].contains_key("hotcue-4"));
    assert_eq!(meta[&sample_path(1)]["hotcues"], vec!["1", "3", "6"]);

    // Rows the import did not remove keep their ids; the moved one was updated in place.
    let ids_after = cue_ids(&lap.db, laptop);
    let kept: Vec<_> = ids_before
        .iter()
        .filter(|(_, kind, hotcue)| !(*kind == 4 && *hotcue == 3))
        .cloned()
        .collect();
    assert_eq!(ids_after, kept);

    // The same slot moved on both machines is a conflict, left alone on both sides.
    conn(&lap.db)
        .execute(
            "UPDATE cues SET position = 111 WHERE track_id = ?1 AND hotcue = 0",
            [laptop],
        )
        .unwrap();
    conn(&sb.db)
        .execute(
            "UPDATE cues SET position = 222 WHERE track_id = ?1 AND hotcue = 0",
            [desk],
        )
        .unwrap();
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    let conflict = &doc["conflicts"][0]["fields"]["hotcue-1"];
    assert_eq!(conflict["direction"], "conflict", "{doc}");
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 0, "{doc}");
    assert!(
        cue_rows(&lap.db, laptop)
            .iter()
            .any(|r| r.contains(" 111 "))
    );
}

#[test]
fn cues_are_one_config_choice() {
    let (sb, _lap) = two_machines(SchemaEra::Newest);
    desktop_cues(&sb);
    let config = sb.home.join(".config/music-commander/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[sync]\nfields = [\"rating\"]\n").unwrap();
    let doc = sb.sync_json(&[]);
    assert_eq!(
        doc["files"]["written"], 0,
        "cues left out are not synced: {doc}"
    );
    std::fs::write(&config, "[sync]\nfields = [\"rating\", \"cues\"]\n").unwrap();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    assert!(sb.metadata()[&sample_path(1)].contains_key("hotcue-1"));
}

#[test]
fn import_warns_about_lossy_files_with_positions_from_another_mixxx_line() {
    let sb = Sandbox::new(N, SchemaEra::Newest);
    testutils::annex_repo::add_files(
        &sb.repo,
        &[
            (Path::new("Lossy/set.mp3"), b"mp3 bytes\n".as_slice()),
            (Path::new("Lossy/same.flac"), b"flac bytes\n".as_slice()),
        ],
    )
    .unwrap();
    let desk_mp3 = common::add_track(&sb.db, &sb.repo, "Lossy/set.mp3");
    let desk_flac = common::add_track(&sb.db, &sb.repo, "Lossy/same.flac");
    sb.sync_json(&[]);
    let lap = Laptop::clone_of(&sb, N);
    let lap_mp3 = common::add_track(&lap.db, Path::new(LAPTOP_ROOT), "Lossy/set.mp3");
    common::add_track(&lap.db, Path::new(LAPTOP_ROOT), "Lossy/same.flac");
    lap.annex_sync();
    lap.sync_json(&sb, &[]);

    // Desktop: Mixxx 2.4 schema; laptop: 2.3.
    add_cue(&sb.db, desk_mp3, 1, 441000.0, 0.0, 0, "In", 0xFF0000);
    add_cue(&sb.db, desk_flac, 1, 441000.0, 0.0, 0, "In", 0xFF0000);
    sb.sync_json(&[]);
    assert_eq!(
        sb.metadata()["Lossy/set.mp3"]["cues-mixxx"],
        vec!["2.4".to_string()]
    );
    sb.annex_sync();
    lap.annex_sync();
    let out = lap.cmd(&sb).args(["import", "--dry-run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cue positions measured by Mixxx 2.4 and this Mixxx is 2.3")
            && err.contains("Lossy/set.mp3")
            && !err.contains("same.flac"),
        "{err}"
    );
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 2, "written all the same: {doc}");
    assert_eq!(cue_rows(&lap.db, lap_mp3).len(), 1);
}

#[test]
fn a_database_without_a_cues_table_leaves_the_repositorys_cues_alone() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23);
    desktop_cues(&sb);
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    conn(&lap.db).execute_batch("DROP TABLE cues").unwrap();
    let (code, out, err) = lap.sync(&sb, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(
        err.matches("is not synced in this run").count(),
        1,
        "one warning for all cue fields: {err}"
    );
    assert!(
        err.contains("cues is not synced") && err.contains("no cues table"),
        "{err}"
    );
    assert!(lap.metadata()[&sample_path(1)].contains_key("hotcue-1"));

    // A table without `label` and `color` (an old schema) still reads.
    conn(&lap.db)
        .execute_batch(
            "CREATE TABLE cues (id INTEGER PRIMARY KEY AUTOINCREMENT, track_id INTEGER NOT NULL, type INTEGER DEFAULT 0 NOT NULL, position INTEGER DEFAULT -1 NOT NULL, length INTEGER DEFAULT 0 NOT NULL, hotcue INTEGER DEFAULT -1 NOT NULL)",
        )
        .unwrap();
    let t = lap.dj().track_id(2);
    conn(&lap.db)
        .execute(
            "INSERT INTO cues (track_id, type, position, length, hotcue) VALUES (?1, 1, 44100, 0, 4)",
            [t],
        )
        .unwrap();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    assert_eq!(
        lap.metadata()[&sample_path(2)]["hotcue-5"],
        vec!["0.500s @44100".to_string()]
    );
}
