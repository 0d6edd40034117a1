//! Plumbing on the git-annex branch: its head, the commits a write added, committing
//! git-annex's journal, and merging the git-annex branches fetched from other clones.

use crate::annex::Repo;
use crate::error::{Error, Result};

/// The made-up key music-commander keeps its sync record on (see `state`); no file points to
/// it. Reading it is also how the journal is committed (see [`commit_journal`]).
pub const STATE_KEY: &str = "WORM-s0-m0--music-commander-sync-state";

/// Runs `git args…` and returns its stdout; `doing` says what for, in the error.
fn run(repo: &Repo, doing: &str, args: &[&str]) -> Result<String> {
    repo.git()
        .args(args)
        .stdout_text()
        .map_err(|e| Error::git(doing, e))
}

/// The local git-annex branch.
pub(crate) const BRANCH: &str = "refs/heads/git-annex";

/// One ref named `…/git-annex`, with its commit.
pub(crate) struct Tip {
    pub(crate) oid: String,
    pub(crate) name: String,
}

/// Whether git-annex counts `refname` as a git-annex branch. git-annex 10.20230126 merges every
/// ref `git show-ref git-annex` lists (Annex/Branch.hs `siblingBranches`): any ref whose name
/// ends in `/git-annex`, wherever it lives (measured: `refs/heads/other/git-annex` and
/// `refs/tags/t/git-annex` are merged by a plain `git annex metadata`, not only
/// `refs/remotes/*/git-annex` and `refs/heads/synced/git-annex`).
fn is_annex_branch(refname: &str) -> bool {
    refname.ends_with("/git-annex")
}

/// Every git-annex branch (the local one and its siblings) listed by `for-each-ref extra…`.
fn list_tips(repo: &Repo, extra: &[&str]) -> Result<Vec<Tip>> {
    let listed = repo
        .git()
        .args(["for-each-ref", "--format=%(objectname) %(refname)"])
        .args(extra);
    let out = listed
        .stdout_bytes()
        .map_err(|e| Error::git("cannot list git-annex branches", e))?;
    let out = String::from_utf8(out).map_err(|_| {
        Error::git(
            "cannot list git-annex branches",
            listed.protocol("a ref name is not UTF-8"),
        )
    })?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, name)| is_annex_branch(name))
        .map(|(oid, name)| Tip {
            oid: oid.to_string(),
            name: name.to_string(),
        })
        .collect())
}

/// `refs/heads/git-annex` (when it exists) and every sibling, merged or not, in one call.
pub(crate) fn tips(repo: &Repo) -> Result<Vec<Tip>> {
    list_tips(repo, &[])
}

/// The siblings git-annex would merge into the local branch before answering a read: every
/// git-annex branch (see [`is_annex_branch`]) whose tip the local branch does not contain.
/// None when the local branch does not exist yet (a clone before its first git-annex
/// command): then every sibling is unmerged, see [`tips`].
pub(crate) fn unmerged_siblings(repo: &Repo) -> Result<Option<Vec<Tip>>> {
    let no_merged = format!("--no-merged={BRANCH}");
    // `--no-merged` fails only when the local branch does not exist; asking first would cost
    // a git call on every read. Any other trouble shows again in the caller's `tips`.
    Ok(list_tips(repo, &[&no_merged]).ok())
}

/// Merges git-annex branches fetched from other clones but not merged yet. A batch writer does
/// not merge them, and "set field to exactly these values" only unsets the values it knows:
/// a value from an unmerged clone would survive the write as a second value (tested in
/// tests/clones.rs). A plain (non-batch) git-annex read merges them, with no work-tree effect.
pub(crate) fn merge_other_annex_branches(repo: &Repo) -> Result<()> {
    let unmerged = match unmerged_siblings(repo)? {
        Some(siblings) => !siblings.is_empty(),
        None => !tips(repo)?.is_empty(),
    };
    if unmerged {
        run(
            repo,
            "cannot merge the git-annex branches of other clones",
            &["annex", "metadata", "--json", "--key", STATE_KEY],
        )?;
    }
    Ok(())
}

/// Commits git-annex's journal to the git-annex branch, and nothing else.
///
/// There is no `git annex commit` in 10.20230126. A metadata read of the state key run with
/// `annex.alwayscommit=true` commits the journal when it exits (measured: +1 commit with the
/// configured message when the journal is non-empty, +0 when it is empty), and with
/// `annex.merge-annex-branches=false` it merges nothing; unlike `git annex merge` it never
/// touches the checked-out branch.
pub(crate) fn commit_journal(repo: &Repo, message: &str) -> Result<()> {
    let message = format!("annex.commitmessage={message}");
    run(
        repo,
        "cannot commit the git-annex branch",
        &[
            "-c",
            "annex.alwayscommit=true",
            "-c",
            &message,
            "-c",
            "annex.merge-annex-branches=false",
            "annex",
            "metadata",
            "--json",
            "--key",
            STATE_KEY,
        ],
    )
    .map(drop)
}

/// Commits what git-annex's journal holds before a writing run starts, and says how many
/// entries that was. A run that could not commit (no git identity, a full disk, a kill) leaves
/// its accepted writes there; reads see them, so without this the next run would say
/// "nothing to sync" while they wait, uncommitted, for some later git-annex command.
pub fn commit_leftover_journal(repo: &Repo) -> Result<usize> {
    let journal = repo.common_dir.join("annex/journal");
    let entries = match std::fs::read_dir(&journal) {
        Ok(dir) => dir.filter_map(|e| e.ok()).count(),
        Err(_) => 0,
    };
    if entries > 0 {
        commit_journal(
            repo,
            "music-commander: commit journal entries left uncommitted",
        )?;
    }
    Ok(entries)
}

pub(crate) fn branch_head(repo: &Repo) -> Result<Option<String>> {
    let out = repo
        .git()
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("{BRANCH}^{{commit}}"),
        ])
        .output()
        .map_err(|e| Error::git("cannot read the git-annex branch", e))?;
    let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success() && !head.is_empty()).then_some(head))
}

pub(crate) fn commits_since(repo: &Repo, before: Option<&str>) -> Result<usize> {
    let Some(after) = branch_head(repo)? else {
        return Ok(0);
    };
    let range = match before {
        Some(before) => format!("{before}..{after}"),
        None => after,
    };
    let rev_list = repo.git().args(["rev-list", "--count", &range]);
    let doing = "cannot count the git-annex branch commits";
    let count = rev_list.stdout_text().map_err(|e| Error::git(doing, e))?;
    count.trim().parse().map_err(|_| {
        Error::git(
            doing,
            rev_list.protocol(format!("unexpected output {count:?}")),
        )
    })
}
