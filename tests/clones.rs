//! Several machines: metadata and the sync record travel between clones through git-annex, and
//! every machine's Mixxx maps onto the same files.

mod common;

use common::{Laptop, Sandbox, annex_sync, sample_path};
use rusqlite::types::Value as Sql;
use testutils::mixxx_db::SchemaEra;

fn laptop(sb: &Sandbox, n: usize) -> Laptop {
    Laptop::clone_of(sb, n)
}

#[test]
fn metadata_and_sync_state_travel_to_a_clone_with_another_music_root() {
    let sb = Sandbox::new(8, SchemaEra::Newest);
    sb.sync_json(&[]);
    let lap = laptop(&sb, 8);
    annex_sync(&lap.repo);

    // The laptop holds no content, yet sees the metadata.
    let rated: Vec<String> = lap
        .git(&["annex", "find", "--anything", "--metadata", "rating=5"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(rated, vec![sample_path(5)]);
    let status = lap.cmd(&sb).arg("status").output().unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("In sync: all 8 files match Mixxx"),
        "{status}"
    );
    assert!(
        status.contains("fixture ("),
        "A's record is shown by its description: {status}"
    );

    // Same values in the laptop's Mixxx (under another root): nothing to write.
    let head = lap.git(&["rev-parse", "git-annex"]);
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(doc["files"]["unchanged"], 8);
    assert_eq!(lap.git(&["rev-parse", "git-annex"]), head);

    // A view of a crate works in the clone.
    lap.git(&["annex", "view", "crate=Festival"]);
    let listed = lap.git(&["ls-files"]);
    lap.git(&["annex", "vpop"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
}

#[test]
fn different_edits_in_two_clones_both_survive() {
    let sb = Sandbox::new(6, SchemaEra::Newest);
    sb.sync_json(&[]);
    let lap = laptop(&sb, 6);
    annex_sync(&lap.repo);

    sb.set_column(1, "rating", Sql::Integer(4));
    sb.sync_json(&[]);
    lap.set_column(2, "comment", Sql::Text("laptop note".into()));
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 1);

    annex_sync(&lap.repo);
    annex_sync(&sb.repo);
    let meta = sb.metadata();
    assert_eq!(meta[&sample_path(1)]["rating"], vec!["4"]);
    assert_eq!(meta[&sample_path(2)]["comment"], vec!["laptop note"]);
    // And the laptop's record reached the first machine.
    let out = sb.cmd().args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["syncs"].as_array().unwrap().len(), 2, "{status}");
}

#[test]
fn the_same_field_edited_in_two_clones_is_reported_as_a_conflict_on_both() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    sb.sync_json(&[]);
    let lap = laptop(&sb, 4);
    annex_sync(&lap.repo);
    lap.sync_json(&sb, &[]);

    sb.set_column(3, "rating", Sql::Integer(4));
    sb.sync_json(&[]);
    lap.set_column(3, "rating", Sql::Integer(1));
    lap.sync_json(&sb, &[]);
    annex_sync(&lap.repo);
    annex_sync(&sb.repo);

    // git-annex's union merge keeps both values: neither edit is lost silently.
    assert_eq!(sb.metadata()[&sample_path(3)]["rating"], vec!["1", "4"]);
    for cmd in [sb.cmd(), lap.cmd(&sb)] {
        let mut cmd = cmd;
        let out = cmd.arg("status").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("1 change in conflict"), "{text}");
        assert!(text.contains(&sample_path(3)), "{text}");
    }
    // A plain sync settles nothing; `--prefer mixxx` settles on this clone's value.
    assert_eq!(sb.sync_json(&[])["files"]["written"], 0);
    sb.sync_json(&["--prefer", "mixxx"]);
    assert_eq!(sb.metadata()[&sample_path(3)]["rating"], vec!["4"]);
}

#[test]
fn an_edit_fetched_but_not_merged_does_not_survive_as_a_second_value() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.sync_json(&[]);
    let lap = laptop(&sb, 3);
    annex_sync(&lap.repo);
    lap.sync_json(&sb, &[]);
    lap.set_column(1, "rating", Sql::Integer(2));
    lap.sync_json(&sb, &[]);

    // The desktop only fetches: the laptop's rating sits in an unmerged laptop/git-annex.
    sb.git(&["fetch", "-q", "laptop"]);
    let unmerged = sb.git(&[
        "for-each-ref",
        "--no-merged=refs/heads/git-annex",
        "--format=%(refname)",
    ]);
    assert!(
        unmerged.contains("git-annex"),
        "the test needs an unmerged branch: {unmerged}"
    );
    sb.set_column(1, "rating", Sql::Integer(5));
    // Both machines changed the rating: a conflict, settled here in favour of this Mixxx.
    let doc = sb.sync_json(&["--prefer", "mixxx"]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    // Whatever git-annex merges later, the desktop's sync settled the field on its value.
    sb.git(&["annex", "merge"]);
    assert_eq!(sb.metadata()[&sample_path(1)]["rating"], vec!["5"]);
}
