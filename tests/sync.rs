//! End-to-end: the binary against real git-annex repositories and real Mixxx databases.

mod common;

use std::collections::BTreeMap;

use common::{Sandbox, sample_path};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::SchemaEra;

/// Per changed file: (fields set with their values, fields removed).
type FileChanges = (BTreeMap<String, Vec<String>>, Vec<String>);

/// The changed files of a `--json` document, by path.
fn changes(doc: &Value) -> BTreeMap<String, FileChanges> {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let path = c["paths"][0].as_str().unwrap().to_string();
            let set = c["set"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_str().unwrap().to_string())
                            .collect(),
                    )
                })
                .collect();
            let removed = c["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            (path, (set, removed))
        })
        .collect()
}

#[test]
fn first_sync_writes_everything_second_writes_nothing() {
    let sb = Sandbox::new(12, SchemaEra::Newest);
    let before = sb.annex_commits();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 12);
    assert_eq!(doc["files"]["failed"], 0);
    assert_eq!(doc["commits"], 1);
    assert_eq!(sb.annex_commits(), before + 1);

    let meta = sb.metadata();
    let first = &meta[&sample_path(1)];
    assert_eq!(first["rating"], vec!["1"]);
    assert_eq!(first["bpm"], vec!["101.00"]);
    assert_eq!(first["crate"], vec!["Festival"]);
    assert_eq!(first["key"], vec!["Db"]);
    assert_eq!(first["title"], vec!["Title 1"]);
    assert!(!first.contains_key("comment"));
    // Track 2 sits in two crates.
    assert_eq!(meta[&sample_path(2)]["crate"], vec!["Deep/Dub", "Warm up"]);

    let head = sb.annex_ref();
    let (code, out, _) = sb.sync(&[]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Nothing to sync: 12 tracks already match"),
        "{out}"
    );
    assert_eq!(sb.annex_ref(), head, "a no-op sync must not commit");
    assert!(
        !sb.repo.join(".git/annex/journal").exists()
            || std::fs::read_dir(sb.repo.join(".git/annex/journal"))
                .unwrap()
                .next()
                .is_none(),
        "a no-op sync must not leave journal entries"
    );
}

#[test]
fn edits_in_mixxx_are_found_by_value_and_only_those_are_written() {
    let sb = Sandbox::new(20, SchemaEra::Mixxx24);
    sb.sync_json(&[]);
    let meta_before = sb.metadata();

    // Rate 5 tracks (none of them was 5 before).
    for i in [1, 2, 3, 4, 6] {
        sb.set_column(i, "rating", Sql::Integer(5));
    }
    // Recolor 2.
    for i in [7, 8] {
        sb.set_column(i, "color", Sql::Integer(0xABCDEF));
    }
    // Move 3 between crates.
    sb.remove_from_crate(9, "Festival");
    sb.add_to_crate(9, "Warm up");
    sb.remove_from_crate(10, "Deep/Dub");
    sb.add_to_crate(10, "Festival");
    sb.remove_from_crate(11, "Ünï ☃");
    sb.add_to_crate(11, "Festival");
    // Clear 1 comment (Mixxx stores a cleared field as '').
    sb.set_column(12, "comment", Sql::Text(String::new()));

    let doc = sb.sync_json(&[]);
    let got = changes(&doc);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut want = BTreeMap::new();
    for i in [1, 2, 3, 4, 6] {
        want.insert(
            sample_path(i),
            (BTreeMap::from([("rating".to_string(), s(&["5"]))]), vec![]),
        );
    }
    for i in [7, 8] {
        want.insert(
            sample_path(i),
            (
                BTreeMap::from([("color".to_string(), s(&["#ABCDEF"]))]),
                vec![],
            ),
        );
    }
    want.insert(
        sample_path(9),
        (
            BTreeMap::from([("crate".to_string(), s(&["Warm up"]))]),
            vec![],
        ),
    );
    want.insert(
        sample_path(10),
        (
            BTreeMap::from([("crate".to_string(), s(&["Festival", "Warm up"]))]),
            vec![],
        ),
    );
    want.insert(
        sample_path(11),
        (
            BTreeMap::from([("crate".to_string(), s(&["Festival"]))]),
            vec![],
        ),
    );
    want.insert(sample_path(12), (BTreeMap::new(), s(&["comment"])));
    assert_eq!(got, want);
    // 5 + 2 + 3 + 1 = 11 files (the issue text says "those 10 files"; its sum is 11).
    assert_eq!(doc["files"]["written"], 11, "{doc:#}");

    // Exactly those fields changed in git-annex; everything else is as before.
    let meta_after = sb.metadata();
    for (file, fields) in &meta_after {
        let before = &meta_before[file];
        match want.get(file) {
            None => assert_eq!(fields, before, "{file} changed"),
            Some((set, removed)) => {
                for (name, values) in fields {
                    if let Some(v) = set.get(name) {
                        assert_eq!(values, v);
                    } else {
                        assert_eq!(Some(values), before.get(name), "{file}: {name}");
                    }
                }
                for name in removed {
                    assert!(!fields.contains_key(name));
                }
            }
        }
    }
    let mut rated: Vec<String> = [1, 2, 3, 4, 5, 6, 11, 17]
        .iter()
        .map(|&i| sample_path(i))
        .collect();
    rated.sort();
    assert_eq!(sb.find("rating=5"), rated);
}

#[test]
fn all_on_an_unchanged_library_writes_nothing_and_lists_every_track() {
    let sb = Sandbox::new(6, SchemaEra::Newest);
    sb.sync_json(&[]);
    let meta = sb.metadata();
    let head = sb.annex_ref();
    let doc = sb.sync_json(&["--all"]);
    assert_eq!(doc["files"]["written"], 0);
    assert_eq!(doc["files"]["unchanged"], 6);
    assert_eq!(sb.annex_ref(), head);
    assert_eq!(sb.metadata(), meta);
}

#[test]
fn paths_limit_the_sync() {
    let sb = Sandbox::new(10, SchemaEra::Newest);
    // Folder: sample files 1 and 6 are under "Röyksopp/Album 1" and "Röyksopp/Album 0".
    let doc = sb.sync_json(&["Röyksopp"]);
    let got: Vec<String> = changes(&doc).into_keys().collect();
    let mut want = vec![sample_path(1), sample_path(6)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(doc["tracks"], 2);

    // Files, one relative and one absolute.
    let abs = sb.repo.join(sample_path(3));
    let doc = sb.sync_json(&[&sample_path(0), abs.to_str().unwrap()]);
    let mut want = vec![sample_path(0), sample_path(3)];
    want.sort();
    assert_eq!(changes(&doc).into_keys().collect::<Vec<_>>(), want);

    let meta = sb.metadata();
    let synced: Vec<&String> = meta
        .iter()
        .filter(|(_, f)| f.contains_key("title"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(synced.len(), 4);

    // A path outside the repository is a usage error naming it.
    let (code, _, err) = sb.sync(&["/tmp"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error: /tmp is not inside the repository"),
        "{err}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sb = Sandbox::new(5, SchemaEra::Newest);
    sb.sync_json(&[]);
    sb.set_column(2, "rating", Sql::Integer(3));
    sb.remove_from_crate(2, "Deep/Dub");
    sb.add_to_crate(2, "Festival");
    sb.set_column(0, "comment", Sql::Null);
    let head = sb.annex_ref();
    let meta = sb.metadata();

    let (code, out, _) = sb.sync(&["--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("Would write 2 files.\n"), "{out}");
    assert!(out.contains("rating: 2 → 3"), "{out}");
    assert!(out.contains("crate: +Festival −Deep/Dub"), "{out}");
    assert!(out.contains("comment: removed"), "{out}");
    assert_eq!(sb.annex_ref(), head);
    assert_eq!(sb.metadata(), meta);
    let journal = sb.repo.join(".git/annex/journal");
    assert!(!journal.exists() || std::fs::read_dir(journal).unwrap().next().is_none());
}

#[test]
fn commits_one_per_sync_or_one_per_batch() {
    let sb = Sandbox::new(500, SchemaEra::Newest);
    let before = sb.annex_commits();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 500);
    assert_eq!(sb.annex_commits(), before + 1);

    let db = sb.mixxx();
    db.execute(
        "UPDATE library SET rating = CASE WHEN rating = 5 THEN 4 ELSE 5 END",
        [],
    )
    .unwrap();
    let before = sb.annex_commits();
    let doc = sb.sync_json(&["--batch-size", "100"]);
    assert_eq!(doc["files"]["written"], 500);
    assert_eq!(sb.annex_commits(), before + 5);
}

#[test]
fn crate_names_with_spaces_slashes_and_unicode() {
    let sb = Sandbox::new(3, SchemaEra::Mixxx23);
    for name in [
        "Late night / after hours",
        "  padded  ",
        "Ünïcødé ☃ 🎧",
        "עברית",
    ] {
        sb.add_to_crate(0, name);
    }
    sb.sync_json(&[]);
    assert_eq!(
        sb.metadata()[&sample_path(0)]["crate"],
        vec![
            "Late night / after hours",
            "padded",
            "Ünïcødé ☃ 🎧",
            "עברית"
        ]
    );
    assert_eq!(sb.find("crate=Ünïcødé ☃ 🎧"), vec![sample_path(0)]);
    sb.remove_from_crate(0, "Late night / after hours");
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1);
    assert_eq!(
        sb.metadata()[&sample_path(0)]["crate"],
        vec!["padded", "Ünïcødé ☃ 🎧", "עברית"]
    );
}

#[test]
fn every_schema_era_syncs() {
    for era in [SchemaEra::Mixxx23, SchemaEra::Mixxx24, SchemaEra::Newest] {
        let sb = Sandbox::new(4, era);
        let doc = sb.sync_json(&[]);
        assert_eq!(doc["files"]["written"], 4, "{era:?}");
        let meta = sb.metadata();
        assert_eq!(meta[&sample_path(1)]["color"], vec!["#112233"], "{era:?}");
        assert_eq!(meta[&sample_path(3)]["rating"], vec!["3"], "{era:?}");
        assert_eq!(sb.sync_json(&[])["files"]["written"], 0, "{era:?}");
    }
}

#[test]
fn unmanaged_fields_are_never_touched() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.git(&[
        "annex",
        "metadata",
        "-s",
        "tag=keep me",
        "-s",
        "rating=1",
        &sample_path(2),
    ]);
    let doc = sb.sync_json(&[]);
    let meta = sb.metadata();
    assert_eq!(meta[&sample_path(2)]["tag"], vec!["keep me"]);
    // A first sync (no base) never overwrites a value the repository holds: a conflict.
    assert_eq!(meta[&sample_path(2)]["rating"], vec!["1"]);
    assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    sb.sync_json(&["--prefer", "mixxx"]);
    let meta = sb.metadata();
    assert_eq!(meta[&sample_path(2)]["tag"], vec!["keep me"]);
    assert_eq!(meta[&sample_path(2)]["rating"], vec!["2"]);
}

#[test]
fn skipped_tracks_are_counted_by_reason() {
    let sb = Sandbox::with_tracks(4, SchemaEra::Newest, |repo| {
        let mut tracks: Vec<_> = (0..4).map(|i| common::sample_track(repo, i)).collect();
        tracks[1].mixxx_deleted = Some(1);
        tracks.push(testutils::mixxx_db::FixtureTrack {
            location: b"/somewhere/else/x.mp3".to_vec(),
            rating: Some(5),
            ..Default::default()
        });
        let mut missing = common::sample_track(repo, 0);
        missing.location = repo
            .join("not/there.flac")
            .into_os_string()
            .into_encoded_bytes();
        tracks.push(missing);
        tracks
    });
    std::fs::write(sb.repo.join("plain.txt"), "x").unwrap();
    sb.git(&["add", "plain.txt"]);
    sb.git(&["commit", "-qm", "plain"]);
    // A plain git file Mixxx knows about.
    let db = sb.mixxx();
    db.execute(
        "INSERT INTO track_locations (location, filename, directory, filesize, fs_deleted, needs_verification) VALUES (?1, 'plain.txt', ?2, 1, 0, 0)",
        [sb.repo.join("plain.txt").to_str().unwrap(), sb.repo.to_str().unwrap()],
    )
    .unwrap();
    let loc = db.last_insert_rowid();
    db.execute(
        "INSERT INTO library (location, title, rating, mixxx_deleted) VALUES (?1, 'Plain', 3, 0)",
        [loc],
    )
    .unwrap();

    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 3);
    assert_eq!(doc["skipped"]["removed-from-mixxx"], 1);
    assert_eq!(doc["skipped"]["outside-root"], 1);
    assert_eq!(doc["skipped"]["not-in-repository"], 1);
    assert_eq!(doc["skipped"]["not-annexed"], 1);
    assert!(
        !sb.metadata().contains_key(&sample_path(1))
            || !sb.metadata()[&sample_path(1)].contains_key("title")
    );
}

#[test]
fn identical_content_shares_metadata_and_conflicts_are_reported() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    // Two more files with the same content as each other.
    std::fs::write(sb.repo.join("dup1.flac"), "same").unwrap();
    std::fs::write(sb.repo.join("dup2.flac"), "same").unwrap();
    std::fs::write(sb.repo.join("dup3.flac"), "other same").unwrap();
    std::fs::write(sb.repo.join("dup4.flac"), "other same").unwrap();
    sb.git(&["annex", "add", "-q", "--force-large", "."]);
    sb.git(&["commit", "-qm", "dups"]);
    let db = sb.mixxx();
    for (name, rating) in [
        ("dup1.flac", 4),
        ("dup2.flac", 4),
        ("dup3.flac", 2),
        ("dup4.flac", 5),
    ] {
        db.execute(
            "INSERT INTO track_locations (location, filename, directory, filesize, fs_deleted, needs_verification) VALUES (?1, ?2, ?3, 4, 0, 0)",
            [sb.repo.join(name).to_str().unwrap(), name, sb.repo.to_str().unwrap()],
        )
        .unwrap();
        let loc = db.last_insert_rowid();
        db.execute(
            "INSERT INTO library (location, rating, mixxx_deleted) VALUES (?1, ?2, 0)",
            [loc, rating],
        )
        .unwrap();
    }
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 3, "{doc}");
    assert_eq!(doc["files"]["duplicates"], 1);
    assert_eq!(
        doc["duplicates"][0]["fields"],
        serde_json::json!(["rating"])
    );
    let meta = sb.metadata();
    assert_eq!(meta["dup1.flac"]["rating"], vec!["4"]);
    assert_eq!(meta["dup2.flac"]["rating"], vec!["4"]);
    assert!(!meta["dup3.flac"].contains_key("rating"));
}

#[test]
fn a_file_git_annex_refuses_is_listed_and_the_others_are_written() {
    // A real per-file refusal: git-annex accepts a key with a 300-character name but cannot
    // create its journal file ("File name too long"), answers success:false and carries on.
    // (The direct writer has no journal file to create and writes it: tests/annex_direct.rs.)
    let sb = Sandbox::new(3, SchemaEra::Newest);
    let key = format!("SHA256E-s4--{}.flac", "a".repeat(300));
    let link = sb.repo.join("too long.flac");
    std::os::unix::fs::symlink(format!(".git/annex/objects/xx/yy/{key}/{key}"), &link).unwrap();
    sb.git(&["add", "too long.flac"]);
    sb.git(&[
        "commit",
        "-qm",
        "a key git-annex cannot journal",
        "--no-verify",
    ]);
    let db = sb.mixxx();
    db.execute(
        "INSERT INTO track_locations (location, filename, directory, filesize, fs_deleted, needs_verification) VALUES (?1, 'too long.flac', ?2, 4, 1, 0)",
        [link.to_str().unwrap(), sb.repo.to_str().unwrap()],
    )
    .unwrap();
    let loc = db.last_insert_rowid();
    db.execute(
        "INSERT INTO library (location, rating, mixxx_deleted) VALUES (?1, 5, 0)",
        [loc],
    )
    .unwrap();
    drop(db);

    let (code, out, err) = sb.sync(&["--writer", "git-annex"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("files written                                  3"),
        "{out}"
    );
    assert!(
        out.contains("files failed                                   1"),
        "{out}"
    );
    assert!(out.contains("failed: too long.flac: "), "{out}");
    assert_eq!(sb.metadata()[&sample_path(2)]["rating"], vec!["2"]);
    // The sync record counts what really happened, not what was planned.
    let repo = music_commander::annex::Repo::discover(&sb.repo).unwrap();
    let records = music_commander::annex::state::read_all(&repo).unwrap();
    assert_eq!(
        (records.len(), records[0].written, records[0].failed),
        (1, 3, 1)
    );
    // The sync record was still written, and a rerun retries only the refused file.
    let doc = sb.sync(&["--json", "--writer", "git-annex"]);
    assert_eq!(doc.0, 1);
    let doc: Value = serde_json::from_str(&doc.1).unwrap();
    assert_eq!(doc["files"]["to_write"], 1);
}
