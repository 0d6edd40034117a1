//! Three-way sync across machines: each clone's Mixxx is compared with the repository and with
//! the base (what that clone last agreed on), so no machine reverts another machine's edit.
//! Real clones, real `git annex sync` between them.

mod common;

use common::{Laptop, Sandbox, sample_path};
use rusqlite::types::Value as Sql;
use serde_json::Value;
use testutils::mixxx_db::SchemaEra;

/// Field `field` of `path` in a JSON list (`changes`, `incoming`, `conflicts`).
fn entry<'a>(doc: &'a Value, list: &str, path: &str, field: &str) -> Option<&'a Value> {
    doc[list]
        .as_array()?
        .iter()
        .find(|e| e["paths"].as_array().unwrap().iter().any(|p| p == path))
        .map(|e| &e["fields"][field])
        .filter(|f| !f.is_null())
}

fn values(v: &[&str]) -> Value {
    serde_json::json!(v)
}

/// A desktop (the sandbox) and a laptop that both synced once and exchanged branches.
fn two_machines(n: usize) -> (Sandbox, Laptop) {
    let sb = Sandbox::new(n, SchemaEra::Newest);
    sb.sync_json(&[]);
    let lap = Laptop::clone_of(&sb, n);
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    (sb, lap)
}

#[test]
fn a_rating_made_on_one_machine_is_incoming_on_the_other_and_never_reverted() {
    let (sb, lap) = two_machines(6);
    let x = sample_path(1);
    sb.set_column(1, "rating", Sql::Integer(5));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();

    let plan = lap.sync_json(&sb, &["--dry-run"]);
    assert_eq!(plan["files"]["to_write"], 0, "{plan}");
    let incoming = entry(&plan, "incoming", &x, "rating").expect("incoming rating");
    assert_eq!(incoming["direction"], "incoming");
    assert_eq!(incoming["mixxx"], values(&["1"]));
    assert_eq!(incoming["repo"], values(&["5"]));
    assert_eq!(incoming["base"], values(&["1"]));
    assert_eq!(plan["counts"]["incoming"], 1, "{plan}");

    let head = lap.annex_ref();
    let done = lap.sync_json(&sb, &[]);
    assert_eq!(done["files"]["written"], 0, "{done}");
    assert_eq!(lap.annex_ref(), head, "nothing to write: no commit");
    let (_, text, _) = lap.sync(&sb, &[]);
    assert!(
        text.contains("1 incoming change is not in this Mixxx yet"),
        "{text}"
    );
    lap.annex_sync();
    sb.annex_sync();
    assert_eq!(sb.metadata()[&x]["rating"], vec!["5"]);
    assert_eq!(lap.metadata()[&x]["rating"], vec!["5"]);
}

#[test]
fn a_rating_here_and_a_color_there_on_one_track_both_survive() {
    let (sb, lap) = two_machines(6);
    let x = sample_path(4);
    sb.set_column(4, "rating", Sql::Integer(5));
    lap.set_column(4, "color", Sql::Integer(0x00FF00));
    sb.sync_json(&[]);
    lap.sync_json(&sb, &[]);
    for _ in 0..2 {
        lap.annex_sync();
        sb.annex_sync();
    }
    // Both sync again: each sees the other's edit as incoming and writes nothing.
    assert_eq!(sb.sync_json(&[])["files"]["written"], 0);
    assert_eq!(lap.sync_json(&sb, &[])["files"]["written"], 0);
    lap.annex_sync();
    sb.annex_sync();
    for meta in [sb.metadata(), lap.metadata()] {
        assert_eq!(meta[&x]["rating"], vec!["5"]);
        assert_eq!(meta[&x]["color"], vec!["#00FF00"]);
    }
}

#[test]
fn the_same_field_edited_on_both_is_a_conflict_settled_by_prefer_mixxx() {
    let (sb, lap) = two_machines(4);
    let x = sample_path(3);
    sb.set_column(3, "rating", Sql::Integer(4));
    lap.set_column(3, "rating", Sql::Integer(1));
    sb.sync_json(&[]);
    lap.sync_json(&sb, &[]);
    lap.annex_sync();
    sb.annex_sync();
    lap.annex_sync();
    // git-annex's union merge holds both values.
    assert_eq!(sb.metadata()[&x]["rating"], vec!["1", "4"]);

    for (doc, mine) in [(sb.status_json(), "4"), (lap.status_json(&sb), "1")] {
        let c = entry(&doc, "conflicts", &x, "rating").expect("a conflict");
        assert_eq!(c["direction"], "conflict");
        assert_eq!(c["mixxx"], values(&[mine]), "{doc}");
        assert_eq!(c["repo"], values(&["1", "4"]), "{doc}");
        assert_eq!(doc["counts"]["conflicts"], 1, "{doc}");
    }
    let (code, text, _) = sb.sync(&[]);
    assert_eq!(code, 0, "conflicts are reported, not failures");
    assert!(
        text.contains("1 conflict left unwritten (sync --prefer mixxx|repo)"),
        "{text}"
    );
    assert_eq!(
        sb.metadata()[&x]["rating"],
        vec!["1", "4"],
        "nothing written"
    );

    let settled = sb.sync_json(&["--prefer", "mixxx"]);
    assert_eq!(settled["files"]["written"], 1, "{settled}");
    assert_eq!(sb.metadata()[&x]["rating"], vec!["4"]);
    sb.annex_sync();
    lap.annex_sync();
    // The laptop sees the desktop's choice as incoming, not as its own edit to re-send.
    let lap_doc = lap.sync_json(&sb, &[]);
    assert_eq!(lap_doc["files"]["written"], 0, "{lap_doc}");
    let inc = entry(&lap_doc, "incoming", &x, "rating").expect("incoming");
    assert_eq!(inc["repo"], values(&["4"]));
    lap.annex_sync();
    sb.annex_sync();
    assert_eq!(sb.metadata()[&x]["rating"], vec!["4"]);
}

#[test]
fn prefer_repo_keeps_the_repository_value_and_stays_settled() {
    let (sb, lap) = two_machines(4);
    let x = sample_path(2);
    sb.set_column(2, "rating", Sql::Integer(5));
    lap.set_column(2, "rating", Sql::Integer(3));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &["--prefer", "repo"]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    // Settled for this machine: the repository's 5 is now an incoming change, not a conflict.
    let again = lap.sync_json(&sb, &["--dry-run"]);
    assert!(
        entry(&again, "conflicts", &x, "rating").is_none(),
        "{again}"
    );
    let inc = entry(&again, "incoming", &x, "rating").expect("incoming");
    assert_eq!(inc["repo"], values(&["5"]));
    assert_eq!(inc["mixxx"], values(&["3"]));
}

#[test]
fn crates_added_on_two_machines_both_survive() {
    let (sb, lap) = two_machines(4);
    let x = sample_path(0);
    sb.add_to_crate(0, "Desktop picks");
    lap.add_to_crate(0, "Laptop picks");
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    lap.annex_sync();
    sb.annex_sync();
    for meta in [sb.metadata(), lap.metadata()] {
        assert_eq!(meta[&x]["crate"], vec!["Desktop picks", "Laptop picks"]);
    }
    // The desktop's Mixxx lacks the laptop's crate: that is incoming there, not a removal.
    let back = sb.sync_json(&[]);
    assert_eq!(back["files"]["written"], 0, "{back}");
    assert!(entry(&back, "incoming", &x, "crate").is_some(), "{back}");
}

#[test]
fn a_crate_removed_on_one_machine_is_removed_everywhere() {
    let (sb, lap) = two_machines(4);
    let x = sample_path(1);
    assert_eq!(sb.metadata()[&x]["crate"], vec!["Festival"]);
    lap.remove_from_crate(1, "Festival");
    lap.sync_json(&sb, &[]);
    lap.annex_sync();
    sb.annex_sync();
    assert!(!sb.metadata()[&x].contains_key("crate"));
    // The desktop still has the membership in its Mixxx: incoming removal, not re-added.
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert!(!sb.metadata()[&x].contains_key("crate"));
}

#[test]
fn a_new_clone_that_disagrees_everywhere_overwrites_nothing() {
    let (sb, _lap) = two_machines(5);
    let before = sb.metadata();
    let third = Laptop::clone_named(&sb, "third", 5);
    for i in 0..5 {
        third.set_column(i, "rating", Sql::Integer(((i + 2) % 5 + 1) as i64));
        third.set_column(i, "comment", Sql::Text(format!("third {i}")));
    }
    third.annex_sync();
    let doc = third.sync_json(&sb, &[]);
    // A value the repository lacks goes out; every value that differs is a conflict.
    let differing: usize = (0..5)
        .map(|i| {
            let held = &before[&sample_path(i)];
            usize::from(held.contains_key("rating")) + usize::from(held.contains_key("comment"))
        })
        .sum();
    assert_eq!(doc["counts"]["conflicts"], differing, "{doc}");
    third.annex_sync();
    sb.annex_sync();
    let after = sb.metadata();
    for i in 0..5 {
        let p = sample_path(i);
        match before[&p].get("rating") {
            // Nothing another clone wrote is overwritten…
            Some(held) => assert_eq!(after[&p].get("rating"), Some(held), "{p}"),
            // …and what the repository lacked arrives.
            None => assert_eq!(
                after[&p]["rating"],
                vec![((i + 2) % 5 + 1).to_string()],
                "{p}"
            ),
        }
    }
}

#[test]
fn deleting_the_local_state_reverts_nothing() {
    let (sb, lap) = two_machines(6);
    let x = sample_path(5);
    sb.set_column(5, "rating", Sql::Integer(2));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    std::fs::remove_dir_all(lap.repo.join(".git/music-commander")).unwrap();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    // Without a base the two ratings are a conflict, never an overwrite.
    assert!(entry(&doc, "conflicts", &x, "rating").is_some(), "{doc}");
    assert_eq!(lap.metadata()[&x]["rating"], vec!["2"]);
}

#[test]
fn a_hand_edit_with_git_annex_is_incoming() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.sync_json(&[]);
    let x = sample_path(2);
    sb.git(&["annex", "metadata", "-q", "-s", "rating=1", &x]);
    let doc = sb.sync_json(&["--dry-run"]);
    assert_eq!(doc["files"]["to_write"], 0, "{doc}");
    let inc = entry(&doc, "incoming", &x, "rating").expect("incoming");
    assert_eq!(inc["mixxx"], values(&["2"]));
    assert_eq!(inc["repo"], values(&["1"]));
    let status = sb.status_json();
    assert_eq!(status["counts"]["incoming"], 1, "{status}");
}

#[test]
fn a_sync_that_writes_nothing_moves_the_base_where_both_sides_agree() {
    let (sb, lap) = two_machines(4);
    let x = sample_path(3);
    // The same edit on both machines: converged, not a conflict.
    sb.set_column(3, "rating", Sql::Integer(5));
    lap.set_column(3, "rating", Sql::Integer(5));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let head = lap.annex_ref();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    assert_eq!(doc["counts"]["conflicts"], 0, "{doc}");
    assert_eq!(lap.annex_ref(), head);
    // The base moved to 5: a later edit to 4 on the laptop goes out.
    lap.set_column(3, "rating", Sql::Integer(4));
    let out = lap.sync_json(&sb, &[]);
    assert_eq!(out["files"]["written"], 1, "{out}");
    assert_eq!(lap.metadata()[&x]["rating"], vec!["4"]);
}

#[test]
fn sigkill_during_a_sync_never_turns_an_incoming_change_into_an_outgoing_one() {
    let (sb, lap) = two_machines(40);
    let x = sample_path(7);
    sb.set_column(7, "rating", Sql::Integer(5));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    // Many outgoing edits on the laptop, so there is a write to interrupt.
    for i in 0..40 {
        if i != 7 {
            lap.set_column(i, "comment", Sql::Text(format!("laptop {i}")));
        }
    }
    for round in 0..6 {
        let mut child = lap.std_cmd(&sb).args(["sync", "-q"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + 120 * round));
        let _ = child.kill();
        let _ = child.wait();
    }
    let doc = lap.sync_json(&sb, &[]);
    assert!(entry(&doc, "incoming", &x, "rating").is_some(), "{doc}");
    let meta = lap.metadata();
    assert_eq!(meta[&x]["rating"], vec!["5"]);
    for i in (0..40).filter(|&i| i != 7) {
        assert_eq!(
            meta[&sample_path(i)]["comment"],
            vec![format!("laptop {i}")]
        );
    }
}

/// A repeated no-op skips checking every file against the base (its stamp says nothing it
/// reads changed since the last sync settled it), but a change on either side — this Mixxx,
/// or the repository alone — makes the next sync check again, so a field that converged
/// there moves its base and a later edit elsewhere is incoming, not a conflict.
#[test]
fn the_base_still_moves_when_only_the_repository_converged_after_a_no_op() {
    let (sb, lap) = two_machines(6);
    let x = sample_path(2);
    let skipped = |text: &str| text.contains("base check skipped");
    // The quiet check (tests/quiet.rs) would answer before this stamp is looked at: each
    // run here forgets it first.
    let verbose = || {
        let dir = lap.repo.join(".git/music-commander");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "quiet") {
                std::fs::remove_file(path).unwrap();
            }
        }
        lap.sync(&sb, &["-v"])
    };

    lap.sync(&sb, &[]);
    let (_, again, _) = verbose();
    assert!(
        skipped(&again),
        "a repeated no-op trusts its stamp: {again}"
    );

    // A conflict: both machines rate x differently; neither side writes it.
    sb.set_column(2, "rating", Sql::Integer(4));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.set_column(2, "rating", Sql::Integer(5));
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    let conflict = entry(&doc, "conflicts", &x, "rating").expect("a conflict");
    assert!(!conflict["base"].as_array().unwrap().is_empty(), "{doc}");
    assert_ne!(conflict["base"], values(&["5"]), "{doc}");
    let (_, err, _) = verbose();
    assert!(skipped(&err), "unchanged inputs: {err}");

    // The desktop gives in: now both sides hold 5, and only the repository moved.
    sb.set_column(2, "rating", Sql::Integer(5));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let (_, err, _) = verbose();
    assert!(
        !skipped(&err),
        "the repository moved: every file is checked: {err}"
    );

    // A later edit on the desktop is incoming on the laptop, against the base 5.
    sb.set_column(2, "rating", Sql::Integer(3));
    sb.sync_json(&[]);
    sb.annex_sync();
    lap.annex_sync();
    let plan = lap.sync_json(&sb, &["--dry-run"]);
    let incoming = entry(&plan, "incoming", &x, "rating").expect("incoming, not a conflict");
    assert_eq!(incoming["base"], values(&["5"]), "{plan}");
    assert_eq!(plan["counts"]["conflicts"], 0, "{plan}");

    // And an edit in this Mixxx alone also makes the next sync check every file.
    let (_, err, _) = verbose();
    let (_, again, _) = verbose();
    assert!(skipped(&again), "{err}\n{again}");
    lap.set_column(3, "comment", Sql::Text("new".into()));
    let (_, err, _) = verbose();
    assert!(!skipped(&err), "this Mixxx changed: {err}");
}
