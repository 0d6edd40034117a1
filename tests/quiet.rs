//! The quiet check: a sync whose inputs are as a sync that found nothing to do left them
//! reports the same and reads nothing; anything that moves on either side — this Mixxx,
//! the repository's files, its metadata, another clone, the config — makes it read again.
//! Real repositories, real git-annex.

mod common;

use common::{Laptop, Sandbox, sample_path};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::SchemaEra;

const QUIET: &str = "quiet check";

/// `sync -v`: (stdout, whether the run took the quiet shortcut).
fn sync_v(sb: &Sandbox, args: &[&str]) -> (String, bool) {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    let (code, out, err) = sb.sync(&all);
    assert_eq!(code, 0, "{err}\n{out}");
    let quiet = out.contains(QUIET) || err.contains(QUIET);
    (out, quiet)
}

/// The JSON report without what differs from run to run.
fn stable(mut doc: Value) -> Value {
    for field in ["elapsed_seconds", "timings", "peak_memory_mib"] {
        doc.as_object_mut().unwrap().remove(field);
    }
    doc
}

/// Report text without the `-v` timings block (which names the phases run).
fn without_timings(text: &str) -> String {
    text.split("timings:").next().unwrap().to_string()
}

/// A sandbox synced once: its first sync wrote everything with the direct writer, which
/// says how it moved the branch, so the no-op after it is already quiet.
fn settled(n: usize) -> Sandbox {
    let sb = Sandbox::new(n, SchemaEra::Newest);
    let first = sb.sync_json(&[]);
    assert_eq!(first["files"]["written"], n, "{first}");
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(
        quiet,
        "the no-op after a complete direct write takes the shortcut"
    );
    sb
}

#[test]
fn a_quiet_run_reports_what_the_full_no_op_reported() {
    let sb = settled(6);
    // Everything read: the shortcut forgotten.
    std::fs::remove_file(quiet_file(&sb)).unwrap();
    let (full_text, quiet) = sync_v(&sb, &[]);
    assert!(!quiet);
    let (quiet_text, quiet) = sync_v(&sb, &[]);
    assert!(quiet, "{quiet_text}");
    assert_eq!(without_timings(&quiet_text), without_timings(&full_text));
    // --json is an output choice, not an input: still quiet, and the same report.
    std::fs::remove_file(quiet_file(&sb)).unwrap();
    let full = sb.sync_json(&[]);
    let again = sb.sync_json(&[]);
    assert_eq!(stable(again.clone()), stable(full));
    assert!(again["timings"].to_string().contains(QUIET), "{again}");
    // Nothing written, no commit.
    assert_eq!(again["commits"], 0);
}

/// Moves the database's modification time, as Mixxx opening it and writing nothing may.
fn touch(db: &std::path::Path) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(db)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

fn quiet_file(sb: &Sandbox) -> std::path::PathBuf {
    let dir = sb.repo.join(".git/music-commander");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "quiet"))
        .expect("a quiet stamp is stored")
}

#[test]
fn an_edit_in_mixxx_is_seen_after_a_quiet_run() {
    let sb = settled(6);
    sb.set_column(2, "rating", Sql::Integer(4));
    let (out, quiet) = sync_v(&sb, &[]);
    assert!(!quiet, "{out}");
    assert_eq!(sb.metadata()[&sample_path(2)]["rating"], vec!["4"]);
    // The direct write said exactly how it moved the branch: the next run is quiet, and
    // reports what reading everything reports.
    let (text, quiet) = sync_v(&sb, &[]);
    assert!(quiet, "{text}");
    std::fs::remove_file(quiet_file(&sb)).unwrap();
    let (full, quiet) = sync_v(&sb, &[]);
    assert!(!quiet);
    assert_eq!(without_timings(&text), without_timings(&full));
    // Touching the database without changing anything (as Mixxx opening it may) reads again
    // and finds nothing.
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet);
    touch(&sb.db);
    let (out, quiet) = sync_v(&sb, &[]);
    assert!(!quiet, "{out}");
    assert!(out.contains("Nothing to sync"), "{out}");
}

#[test]
fn a_repository_edit_is_seen_after_a_quiet_run() {
    let sb = settled(6);
    let x = sample_path(3);
    // A hand edit through git-annex: incoming, shown, not reverted.
    sb.git(&["annex", "metadata", "-s", "rating=2", &x]);
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["counts"]["incoming"], 1, "{doc}");
    assert!(!doc["timings"].to_string().contains(QUIET));
    // An incoming change is something to report: no run takes the shortcut while it waits.
    let again = sb.sync_json(&[]);
    assert_eq!(again["counts"]["incoming"], 1, "{again}");
    assert!(!again["timings"].to_string().contains(QUIET), "{again}");
    assert_eq!(sb.metadata()[&x]["rating"], vec!["2"]);
}

#[test]
fn a_journal_only_edit_is_seen_after_a_quiet_run() {
    let sb = settled(6);
    let x = sample_path(1);
    sb.git(&[
        "-c",
        "annex.alwayscommit=false",
        "annex",
        "metadata",
        "-s",
        "rating=3",
        &x,
    ]);
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["counts"]["incoming"], 1, "{doc}");
}

#[test]
fn another_clones_edit_is_seen_after_a_quiet_run() {
    let sb = settled(6);
    let lap = Laptop::clone_of(&sb, 6);
    lap.annex_sync();
    lap.sync_json(&sb, &[]);
    lap.set_column(5, "rating", Sql::Integer(2));
    lap.sync_json(&sb, &[]);
    lap.annex_sync();
    sb.annex_sync();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["counts"]["incoming"], 1, "{doc}");
}

#[test]
fn a_new_file_and_a_config_change_are_seen_after_a_quiet_run() {
    let sb = settled(6);
    // A file added to the repository that a Mixxx track points to.
    let name = sample_path(0).replace(".flac", " (copy).flac");
    std::fs::copy(sb.repo.join(sample_path(0)), sb.repo.join(&name)).ok();
    sb.git(&["annex", "add", &name]);
    let (out, quiet) = sync_v(&sb, &[]);
    assert!(!quiet, "a git add moves the index: {out}");
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet);

    // A field given up in the config: the run reads again and manages one field less.
    let config = sb.home.join(".config/music-commander/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[sync]\nfields = [\"rating\", \"crate\"]\n").unwrap();
    let (out, quiet) = sync_v(&sb, &[]);
    assert!(!quiet, "{out}");
}

#[test]
fn a_run_with_conflicts_or_a_selection_never_stores_the_shortcut() {
    let sb = settled(6);
    let x = sample_path(4);
    sb.git(&["annex", "metadata", "-s", "rating=2", &x]);
    sb.set_column(4, "rating", Sql::Integer(5));
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    for _ in 0..2 {
        let again = sb.sync_json(&[]);
        assert_eq!(again["counts"]["conflicts"], 1, "{again}");
        assert!(!again["timings"].to_string().contains(QUIET));
    }
    // Settled by hand: quiet again two runs later.
    sb.git(&["annex", "metadata", "-s", "rating=5", &x]);
    sync_v(&sb, &[]);
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet);
    // `sync PATHS`, `--dry-run` and `--all` read everything and leave the shortcut alone.
    for args in [&["--dry-run"][..], &["--all"], &[sample_path(1).as_str()]] {
        let (out, quiet) = sync_v(&sb, args);
        assert!(!quiet, "{args:?}: {out}");
    }
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet, "only a full run that found work forgets it");
}

#[test]
fn after_a_write_by_git_annex_the_next_run_reads_everything() {
    let sb = settled(6);
    sb.set_column(2, "rating", Sql::Integer(4));
    let (out, quiet) = sync_v(&sb, &["--writer", "git-annex"]);
    assert!(!quiet, "{out}");
    // git-annex's writer does not say how it moved the branch: no shortcut from that run.
    let (out, quiet) = sync_v(&sb, &[]);
    assert!(!quiet, "{out}");
    assert!(out.contains("Nothing to sync"), "{out}");
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet);
}

#[test]
fn a_write_that_leaves_an_incoming_change_stores_no_shortcut() {
    let sb = settled(6);
    sb.git(&["annex", "metadata", "-s", "rating=2", &sample_path(3)]);
    sb.set_column(1, "rating", Sql::Integer(4));
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    assert_eq!(doc["counts"]["incoming"], 1, "{doc}");
    let again = sb.sync_json(&[]);
    assert_eq!(again["counts"]["incoming"], 1, "{again}");
    assert!(!again["timings"].to_string().contains(QUIET), "{again}");
}

/// A git-annex write between a sync's reading and its own write: the direct writer builds
/// on a head the sync never read, so that sync stores no shortcut and the next one reads the
/// other write (incoming).
#[test]
fn a_write_by_someone_else_during_the_run_is_read_by_the_next_one() {
    let sb = settled(6);
    sb.set_column(1, "rating", Sql::Integer(4));
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("music-commander"))
        .current_dir(&sb.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env(
            "MUSIC_COMMANDER_MIXXX_PROCESS",
            common::mixxx_process_name(),
        )
        .env("MUSIC_COMMANDER_TEST_PAUSE_BEFORE_WRITE_MS", "1500")
        .arg("--mixxx-db")
        .arg(&sb.db)
        .args(["sync", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    sb.git(&["annex", "metadata", "-s", "rating=2", &sample_path(3)]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    let next = sb.sync_json(&[]);
    assert_eq!(next["counts"]["incoming"], 1, "{next}");
}

/// `sync --json` and which way it read: the Mixxx side compared track by track against the
/// stamp (nothing else read), or everything.
fn sync_json_read(sb: &Sandbox) -> (Value, bool) {
    let doc = sb.sync_json(&[]);
    let timings = doc["timings"].to_string();
    let compared = timings.contains(TRACKS);
    assert_eq!(
        compared,
        !timings.contains("key map"),
        "one way or the other: {timings}"
    );
    (doc, compared)
}

const TRACKS: &str = "tracks compared";

/// The plan's part of a report: what a dry run (which reads everything) and a sync agree on.
fn planned(doc: &Value) -> Value {
    serde_json::json!({
        "tracks": doc["tracks"],
        "counts": doc["counts"],
        "changes": doc["changes"],
        "skipped": doc["skipped"],
        "warnings": doc["warnings"],
    })
}

#[test]
fn after_a_quiet_run_only_the_tracks_whose_values_changed_are_planned() {
    let sb = settled(8);
    let mixxx = sb.mixxx();
    // One of each kind of input a track's fields are made from: a column, a crate
    // membership, a crate's name (every track in it), a cue.
    sb.add_to_crate(3, "Opening");
    sb.add_to_crate(4, "Opening");
    let (synced, compared) = sync_json_read(&sb);
    assert!(compared, "{synced}");
    assert_eq!(synced["files"]["written"], 2, "{synced}");
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.set_column(2, "comment", Sql::Text("warm-up".into()));
    mixxx
        .execute(
            "UPDATE crates SET name = 'Opening 2027' WHERE name = 'Opening'",
            [],
        )
        .unwrap();
    mixxx
        .execute(
            "INSERT INTO cues (track_id, type, position, length, hotcue, label, color) VALUES (?1, 1, 88200, 0, 2, 'drop', 0)",
            [sb.track_id(6)],
        )
        .unwrap();
    // What reading everything plans (a dry run never takes a shortcut).
    let full = sb.sync_json(&["--dry-run"]);
    assert!(full["timings"].to_string().contains("key map"), "{full}");
    let (doc, compared) = sync_json_read(&sb);
    assert!(compared, "{doc}");
    assert_eq!(planned(&doc), planned(&full));
    // The renamed crate's two tracks, the rating, the comment, the cue.
    assert_eq!(doc["files"]["written"], 5, "{doc}");
    let meta = sb.metadata();
    assert_eq!(meta[&sample_path(1)]["rating"], vec!["5"]);
    assert_eq!(meta[&sample_path(2)]["comment"], vec!["warm-up"]);
    assert!(meta[&sample_path(3)]["crate"].contains(&"Opening 2027".to_string()));
    assert!(meta[&sample_path(4)]["crate"].contains(&"Opening 2027".to_string()));
    assert!(
        meta[&sample_path(6)].keys().any(|f| f.starts_with("cue")),
        "{:?}",
        meta[&sample_path(6)]
    );
    // Written by the direct writer: the next run is quiet, and reports what a full read does.
    let (text, quiet) = sync_v(&sb, &[]);
    assert!(quiet, "{text}");
    let (full, _) = sync_v(&sb, &["--dry-run"]);
    assert_eq!(without_timings(&text), without_timings(&full));
}

#[test]
fn a_touched_database_is_compared_once_then_quiet() {
    let sb = settled(6);
    touch(&sb.db);
    let (doc, compared) = sync_json_read(&sb);
    assert!(compared, "{doc}");
    assert_eq!(doc["files"]["unchanged"], 6, "{doc}");
    assert_eq!(doc["commits"], 0);
    let (text, quiet) = sync_v(&sb, &[]);
    assert!(
        quiet,
        "the comparison stored the database as it is now: {text}"
    );
}

#[test]
fn a_track_that_came_went_or_moved_makes_the_run_read_everything() {
    let sb = settled(6);
    // Removed from the Mixxx library: skipped from now on, which the full read reports.
    sb.set_column(2, "mixxx_deleted", Sql::Integer(1));
    let (doc, compared) = sync_json_read(&sb);
    assert!(!compared, "{doc}");
    assert_eq!(doc["skipped"]["removed-from-mixxx"], 1, "{doc}");
    let (_, quiet) = sync_v(&sb, &[]);
    assert!(quiet);
    // A new track.
    common::add_track(
        &sb.db,
        &sb.repo,
        &sample_path(0).replace(".flac", " (live).flac"),
    );
    let (doc, compared) = sync_json_read(&sb);
    assert!(!compared, "{doc}");
    // A moved location.
    let track = sb.track_id(3);
    sb.mixxx()
        .execute(
            "UPDATE track_locations SET location = location || '.moved' WHERE id = (SELECT location FROM library WHERE id = ?1)",
            [track],
        )
        .unwrap();
    let (doc, compared) = sync_json_read(&sb);
    assert!(!compared, "{doc}");
    assert!(
        doc["skipped_tracks"].to_string().contains(".moved"),
        "{doc}"
    );
}

#[test]
fn a_damaged_tracks_file_makes_the_run_read_everything() {
    let sb = settled(6);
    let tracks = quiet_file(&sb).with_extension("tracks");
    let mut bytes = std::fs::read(&tracks).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&tracks, &bytes).unwrap();
    sb.set_column(1, "rating", Sql::Integer(2));
    let (doc, compared) = sync_json_read(&sb);
    assert!(!compared, "{doc}");
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    // Gone altogether: the same.
    std::fs::remove_file(&tracks).unwrap();
    sb.set_column(1, "rating", Sql::Integer(3));
    let (doc, compared) = sync_json_read(&sb);
    assert!(!compared, "{doc}");
    assert_eq!(sb.metadata()[&sample_path(1)]["rating"], vec!["3"]);
}
