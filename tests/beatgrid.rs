//! The beat grid between two machines: a grid and its BPM lock made in one Mixxx arrive in
//! the other's `library` row with identical columns (`beats`, `beats_version`,
//! `beats_sub_version`, `bpm_lock`, and `bpm` from the grid); off unless configured; edits
//! on both machines conflict; removal travels; values this codec did not write are refused
//! per file. Real clones, real git-annex, real SQLite.

mod common;

use std::path::Path;

use common::{LAPTOP_ROOT, Laptop, Sandbox, json_of, sample_path};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::beats::{beatgrid_blob, beatmap_blob};
use testutils::mixxx_db::SchemaEra;

const N: usize = 4;

/// `[sync] fields` for both machines (they share the sandbox's config home).
fn configure(sb: &Sandbox, fields: &str) {
    let config = sb.home.join(".config/music-commander/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("[sync]\nfields = [{fields}]\n")).unwrap();
}

const WITH_GRID: &str = r#""rating", "bpm", "beatgrid""#;

/// A desktop (newest schema) and a laptop of `era`, both synced once with `fields`, branches
/// exchanged.
fn two_machines(era: SchemaEra, fields: Option<&str>) -> (Sandbox, Laptop) {
    common::two_machines_of_era(N, era, |sb| {
        if let Some(fields) = fields {
            configure(sb, fields);
        }
    })
}

fn conn(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    c
}

/// The grid columns of a track, typed exactly (`quote()` shows the storage class).
fn grid_columns(db: &Path, track: i64) -> String {
    conn(db)
        .query_row(
            "SELECT quote(beats) || ' ' || quote(beats_version) || ' ' || quote(beats_sub_version) || ' ' || quote(bpm_lock) || ' ' || quote(bpm) FROM library WHERE id = ?1",
            [track],
            |r| r.get(0),
        )
        .unwrap()
}

/// Sets track `track`'s grid as Mixxx saves one: the blob, its version, the sub-version,
/// the lock and the BPM the grid has.
fn set_grid(
    db: &Path,
    track: i64,
    beats: Option<&[u8]>,
    version: Option<&str>,
    sub: Option<&str>,
    lock: i64,
    bpm: f64,
) {
    conn(db)
        .execute(
            "UPDATE library SET beats = ?1, beats_version = ?2, beats_sub_version = ?3, bpm_lock = ?4, bpm = ?5 WHERE id = ?6",
            rusqlite::params![beats, version, sub, lock, bpm, track],
        )
        .unwrap();
}

fn import_json(lap: &Laptop, sb: &Sandbox, args: &[&str]) -> Value {
    json_of(lap.cmd(sb).args(["import", "--json"]).args(args))
}

/// The DJ's grids on the desktop: track 1 a hand-fixed, locked BeatGrid (127.3 BPM, first
/// beat at frame 1234, empty sub-version); track 2 an analyser's beat map with a NULL
/// sub-version, not locked, its BPM as before (a beat map's tempo is Mixxx's to compute
/// over the track, so import leaves the column alone).
fn desktop_grids(sb: &Sandbox) {
    set_grid(
        &sb.db,
        sb.track_id(1),
        Some(&beatgrid_blob(127.3, 1234)),
        Some("BeatGrid-2.0"),
        Some(""),
        1,
        127.3,
    );
    set_grid(
        &sb.db,
        sb.track_id(2),
        Some(&beatmap_blob(&[500, 21_000, 41_500])),
        Some("BeatMap-1.0"),
        None,
        0,
        102.0,
    );
}

fn expected_value(bpm: f64, frame: i32, locked: bool) -> String {
    use base64::Engine;
    format!(
        "{bpm:.2}bpm@{frame}{},BeatGrid-2.0,,{}",
        if locked { ",locked" } else { "" },
        base64::engine::general_purpose::STANDARD.encode(beatgrid_blob(bpm, frame))
    )
}

#[test]
fn a_grid_and_its_lock_travel_with_identical_columns_into_every_era() {
    for era in SchemaEra::ALL {
        let (sb, lap) = two_machines(era, Some(WITH_GRID));
        desktop_grids(&sb);
        let doc = sb.sync_json(&[]);
        assert_eq!(doc["files"]["written"], 2, "{era:?}: {doc}");
        let meta = sb.metadata();
        assert_eq!(
            meta[&sample_path(1)]["beatgrid"],
            vec![expected_value(127.3, 1234, true)]
        );
        assert!(
            meta[&sample_path(2)]["beatgrid"][0].starts_with("3beats@500,BeatMap-1.0,-,"),
            "{:?}",
            meta[&sample_path(2)]
        );
        // The positions are frames of this Mixxx line's decoder.
        assert_eq!(meta[&sample_path(1)]["cues-mixxx"], vec!["2.4".to_string()]);
        assert_eq!(
            sb.find("beatgrid=*,locked,*"),
            vec![sample_path(1)],
            "git annex find selects the locked grids"
        );
        // No space: git-annex keeps the value as it is in its log, not base64.
        let log = sb.git(&["log", "-p", "-1", "git-annex"]);
        assert!(
            log.contains(&format!("+{}", expected_value(127.3, 1234, true))),
            "{log}"
        );

        sb.annex_sync();
        lap.annex_sync();
        let doc = import_json(&lap, &sb, &[]);
        assert_eq!(doc["files"]["imported"], 2, "{era:?}: {doc}");
        assert_eq!(doc["unwritable"], serde_json::json!([]), "{era:?}: {doc}");
        for i in [1, 2] {
            assert_eq!(
                grid_columns(&lap.db, lap.dj().track_id(i)),
                grid_columns(&sb.db, sb.track_id(i)),
                "{era:?}"
            );
        }
        assert!(
            grid_columns(&lap.db, lap.dj().track_id(1)).ends_with("'BeatGrid-2.0' '' 1 127.3"),
            "{}",
            grid_columns(&lap.db, lap.dj().track_id(1))
        );
        assert!(
            grid_columns(&lap.db, lap.dj().track_id(2)).contains("'BeatMap-1.0' NULL 0"),
            "NULL and '' sub-versions both survive"
        );
        // Nothing left to do either way.
        let doc = lap.sync_json(&sb, &[]);
        assert_eq!(doc["files"]["written"], 0, "{era:?}: {doc}");
        assert_eq!(doc["counts"]["conflicts"], 0, "{era:?}: {doc}");
        assert_eq!(doc["counts"]["incoming"], 0, "{era:?}: {doc}");
    }
}

#[test]
fn the_grid_is_off_unless_configured_and_the_reader_skips_its_columns() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23, None);
    desktop_grids(&sb);
    // Only the BPM the first grid changed goes out; no `beatgrid`, no `cues-mixxx`.
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    let meta = sb.metadata();
    for i in [1, 2] {
        assert!(!meta[&sample_path(i)].contains_key("beatgrid"), "{meta:?}");
        assert!(
            !meta[&sample_path(i)].contains_key("cues-mixxx"),
            "{meta:?}"
        );
    }
    // A grid written into the repository by hand is not the laptop's business either.
    sb.git(&[
        "annex",
        "metadata",
        "-s",
        &format!("beatgrid={}", expected_value(128.0, 0, true)),
        &sample_path(3),
    ]);
    sb.annex_sync();
    lap.annex_sync();
    let before = grid_columns(&lap.db, lap.dj().track_id(3));
    let doc = import_json(&lap, &sb, &[]);
    assert!(
        !doc.to_string().contains("beatgrid"),
        "not managed, not mentioned: {doc}"
    );
    assert_eq!(grid_columns(&lap.db, lap.dj().track_id(3)), before);

    // Turned on, the desktop's grids go out.
    configure(&sb, WITH_GRID);
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 2, "{doc}");
    assert_eq!(
        sb.metadata()[&sample_path(1)]["beatgrid"],
        vec![expected_value(127.3, 1234, true)]
    );
}

#[test]
fn edits_on_both_machines_conflict_and_removal_travels() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23, Some(WITH_GRID));
    desktop_grids(&sb);
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    import_json(&lap, &sb, &[]);
    let (desk, laptop) = (sb.track_id(1), lap.dj().track_id(1));

    // The laptop unlocks the grid, the desktop moves it.
    conn(&lap.db)
        .execute("UPDATE library SET bpm_lock = 0 WHERE id = ?1", [laptop])
        .unwrap();
    set_grid(
        &sb.db,
        desk,
        Some(&beatgrid_blob(127.3, 1300)),
        Some("BeatGrid-2.0"),
        Some(""),
        1,
        127.3,
    );
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    sb.annex_sync();
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    assert_eq!(
        doc["conflicts"][0]["fields"]["beatgrid"]["mixxx"],
        serde_json::json!([expected_value(127.3, 1234, false)]),
        "{doc}"
    );
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(
        doc["files"]["imported"], 0,
        "conflicts are left alone: {doc}"
    );
    assert!(grid_columns(&lap.db, laptop).contains(" 0 127.3"));
    // Settled with the repository's grid.
    let doc = import_json(&lap, &sb, &["--prefer", "repo"]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(grid_columns(&lap.db, laptop), grid_columns(&sb.db, desk));

    // The desktop's grid removed (Mixxx has none for the track): the laptop's is cleared
    // as a track Mixxx never analysed has it, and Mixxx analyses it again.
    set_grid(&sb.db, desk, None, None, None, 0, 127.3);
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    assert!(!sb.metadata()[&sample_path(1)].contains_key("beatgrid"));
    sb.annex_sync();
    lap.annex_sync();
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(grid_columns(&lap.db, laptop), "NULL NULL NULL 0 127.3");
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(doc["counts"]["incoming"], 0, "{doc}");
}

#[test]
fn values_this_codec_did_not_write_are_refused_per_file_and_the_run_continues() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23, Some(WITH_GRID));
    // By hand in the repository: a garbage value, a value whose summary lies about its
    // bytes, and two grids at once; and an ordinary rating through the desktop's Mixxx.
    // Each is the one file's, the rating is imported all the same.
    let lie = expected_value(128.0, 0, false).replacen("128.00", "140.00", 1);
    for (i, value) in [(0, "garbage"), (1, lie.as_str())] {
        sb.git(&[
            "annex",
            "metadata",
            "-s",
            &format!("beatgrid={value}"),
            &sample_path(i),
        ]);
    }
    sb.git(&[
        "annex",
        "metadata",
        "-s",
        &format!("beatgrid={}", expected_value(128.0, 0, false)),
        "-s",
        &format!("beatgrid+={}", expected_value(129.0, 0, false)),
        &sample_path(2),
    ]);
    sb.set_column(3, "rating", Sql::Integer(5));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let before: Vec<String> = (0..3)
        .map(|i| grid_columns(&lap.db, lap.dj().track_id(i)))
        .collect();
    let out = lap.cmd(&sb).args(["import", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["files"]["imported"], 1, "the rating: {doc}");
    let unwritable = doc["unwritable"].as_array().unwrap();
    let mut refused: Vec<(String, String)> = unwritable
        .iter()
        .map(|u| {
            (
                u["paths"][0].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    refused.sort();
    assert_eq!(refused.len(), 2, "{doc}");
    assert!(
        refused[0].1.contains("\"garbage\" is not a value"),
        "{refused:?}"
    );
    assert!(refused[1].1.contains("140.00bpm"), "{refused:?}");
    // Two grids at once is a conflict (git-annex merged two clones' values), listed as one.
    assert_eq!(doc["conflicts"][0]["paths"][0], sample_path(2), "{doc}");
    let after: Vec<String> = (0..3)
        .map(|i| grid_columns(&lap.db, lap.dj().track_id(i)))
        .collect();
    assert_eq!(after, before, "nothing written for refused values");
    let rating: i64 = conn(&lap.db)
        .query_row(
            "SELECT rating FROM library WHERE id = ?1",
            [lap.dj().track_id(3)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rating, 5);
}

#[test]
fn a_blob_mixxx_cannot_read_travels_as_it_is() {
    // Mixxx re-analyses a grid it cannot decode, on every machine alike; the bytes are
    // still the row's, so they travel exactly (summary `?`).
    let (sb, lap) = two_machines(SchemaEra::Mixxx23, Some(WITH_GRID));
    set_grid(
        &sb.db,
        sb.track_id(1),
        Some(&[0xFF, 0xFF, 0x00]),
        Some("BeatGrid-2.0"),
        Some("vamp_plugin_id=qm-tempotracker:0|x y"),
        0,
        101.0,
    );
    sb.sync_json(&[]);
    assert_eq!(
        sb.metadata()[&sample_path(1)]["beatgrid"],
        vec!["?,BeatGrid-2.0,vamp_plugin_id=qm-tempotracker:0|x%20y,//8A".to_string()]
    );
    sb.annex_sync();
    lap.annex_sync();
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(
        grid_columns(&lap.db, lap.dj().track_id(1)),
        grid_columns(&sb.db, sb.track_id(1))
    );
}

#[test]
fn an_incoming_bpm_must_agree_with_the_grid_imported_with_it() {
    let (sb, lap) = two_machines(SchemaEra::Mixxx23, Some(WITH_GRID));
    // A desktop row whose bpm column disagrees with its grid (Mixxx would rewrite it from
    // the grid on its next save).
    set_grid(
        &sb.db,
        sb.track_id(1),
        Some(&beatgrid_blob(127.3, 0)),
        Some("BeatGrid-2.0"),
        Some(""),
        0,
        90.0,
    );
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "{doc}");
    assert_eq!(doc["unwritable"][0]["field"], "bpm", "{doc}");
    assert_eq!(
        doc["unwritable"][0]["reason"],
        "the beat grid imported with it sets the BPM to 127.30"
    );
    assert!(
        grid_columns(&lap.db, lap.dj().track_id(1)).ends_with("'BeatGrid-2.0' '' 0 127.3"),
        "the grid's BPM, as Mixxx would show it"
    );
}

#[test]
fn import_warns_about_a_lossy_files_grid_from_another_mixxx_line() {
    let sb = Sandbox::new(N, SchemaEra::Newest);
    configure(&sb, WITH_GRID);
    testutils::annex_repo::add_files(
        &sb.repo,
        &[(Path::new("Lossy/set.mp3"), b"mp3 bytes\n".as_slice())],
    )
    .unwrap();
    let desk = common::add_track(&sb.db, &sb.repo, "Lossy/set.mp3");
    sb.sync_json(&[]);
    let lap = Laptop::clone_of(&sb, N);
    let laptop = common::add_track(&lap.db, Path::new(LAPTOP_ROOT), "Lossy/set.mp3");
    lap.annex_sync();
    lap.sync_json(&sb, &[]);

    // Desktop: Mixxx 2.4 schema; laptop: 2.3. The first beat is a frame of the decoder.
    set_grid(
        &sb.db,
        desk,
        Some(&beatgrid_blob(128.0, 4410)),
        Some("BeatGrid-2.0"),
        Some(""),
        1,
        128.0,
    );
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
        err.contains("1 lossy file(s) get beat grids measured by Mixxx 2.4 and this Mixxx is 2.3")
            && err.contains("Lossy/set.mp3"),
        "{err}"
    );
    let doc = import_json(&lap, &sb, &[]);
    assert_eq!(doc["files"]["imported"], 1, "written all the same: {doc}");
    assert_eq!(grid_columns(&lap.db, laptop), grid_columns(&sb.db, desk));
}

#[test]
fn the_reader_reads_the_grid_blob_only_when_it_is_managed() {
    use music_commander::mixxx::{MixxxDb, Raw};
    use music_commander::sync::fields::{FieldId, ManagedFields};
    let sb = Sandbox::new(3, SchemaEra::Mixxx23);
    let blob = beatgrid_blob(128.0, 0);
    set_grid(
        &sb.db,
        sb.track_id(0),
        Some(&blob),
        Some("BeatGrid-2.0"),
        None,
        1,
        128.0,
    );
    // Bytes stored as TEXT are still the bytes; a number in the blob column is no grid.
    conn(&sb.db)
        .execute(
            "UPDATE library SET beats = CAST(X'0A0B' AS TEXT), beats_version = 'BeatGrid-2.0' WHERE id = ?1",
            [sb.track_id(1)],
        )
        .unwrap();
    conn(&sb.db)
        .execute(
            "UPDATE library SET beats = 42, beats_version = 'BeatGrid-2.0' WHERE id = ?1",
            [sb.track_id(2)],
        )
        .unwrap();
    let db = MixxxDb::open(&sb.db).unwrap();

    let defaults = ManagedFields::new(&FieldId::defaults(), &Default::default()).unwrap();
    let request = defaults.request();
    assert!(
        !request.columns.iter().any(|c| c.name == "beats"),
        "no blob read for users who do not manage the grid: {request:?}"
    );
    let library = db.read_library(&request).unwrap();
    assert_eq!(library.position("beats"), None);

    let managed = ManagedFields::new(&[FieldId::BeatGrid], &Default::default()).unwrap();
    let library = db.read_library(&managed.request()).unwrap();
    let row = |i: usize| {
        library
            .tracks
            .iter()
            .position(|t| t.id == sb.track_id(i))
            .unwrap()
    };
    assert_eq!(library.get(row(0), "beats"), Raw::Blob(&blob));
    assert_eq!(library.get(row(0), "beats_sub_version"), Raw::Null);
    assert_eq!(library.get(row(0), "bpm_lock"), Raw::Integer(1));
    assert_eq!(library.get(row(1), "beats"), Raw::Blob(&[0x0A, 0x0B]));
    assert_eq!(library.get(row(2), "beats"), Raw::Null);
    let desired = managed.reader(&library).desired(row(0));
    assert_eq!(
        desired.get("beatgrid").map(|v| v.to_vec()),
        Some(vec![format!("128.00bpm@0,locked,BeatGrid-2.0,-,{}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&blob)
        })])
    );
}
