//! Which refs count as git-annex branches of other clones: every ref git-annex merges (any name
//! ending in `/git-annex`), for the writer as for the reader.

mod common;

use common::{Sandbox, sample_path};
use rusqlite::types::Value as Sql;
use testutils::annex_repo;
use testutils::mixxx_db::SchemaEra;

/// A sibling under a name outside `refs/remotes` (here `refs/heads/laptop/git-annex`, as a
/// bundle or a manual fetch leaves it): git-annex merges it, so the writer must too, or its
/// value survives the write as a second value.
#[test]
fn a_sibling_outside_refs_remotes_does_not_survive_as_a_second_value() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    sb.sync_json(&[]);
    let base = sb.tmp.path().canonicalize().unwrap();
    let lap = base.join("laptop");
    annex_repo::git(&base, &["clone", "-q", sb.repo.to_str().unwrap(), "laptop"]).unwrap();
    annex_repo::git(&lap, &["config", "user.name", "laptop"]).unwrap();
    annex_repo::git(&lap, &["config", "user.email", "laptop@example.invalid"]).unwrap();
    annex_repo::git(&lap, &["annex", "init", "-q", "laptop"]).unwrap();
    let file = sample_path(1);
    annex_repo::git(&lap, &["annex", "metadata", "-q", "-s", "rating=2", &file]).unwrap();

    sb.git(&[
        "fetch",
        "-q",
        lap.to_str().unwrap(),
        "+refs/heads/git-annex:refs/heads/laptop/git-annex",
    ]);
    let unmerged = sb.git(&[
        "for-each-ref",
        "--no-merged=refs/heads/git-annex",
        "--format=%(refname)",
    ]);
    assert!(
        unmerged.contains("refs/heads/laptop/git-annex"),
        "the test needs an unmerged branch: {unmerged}"
    );
    sb.set_column(1, "rating", Sql::Integer(5));
    // Both sides changed the rating since the base: settle it on this Mixxx's value.
    let doc = sb.sync_json(&["--prefer", "mixxx"]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    sb.git(&["annex", "merge"]);
    assert_eq!(sb.metadata()[&file]["rating"], vec!["5"]);
}
