//! Current metadata of many keys, read from the git-annex branch and journal with git
//! plumbing (no git-annex process), as `git annex metadata` would report it.
//!
//! - [`fresh`]: [`read`], every blob at the branch head and the unmerged siblings.
//! - [`cached`]: [`read_with`], the same answers through the persistent metadata cache.
//!
//! What both share is here: which refs to read, how a key's log is looked up in them, and the
//! hash levels of the branch.

mod cached;
mod fresh;

pub use cached::{RepoState, Snapshot, read_with, read_with_state};
pub use fresh::read;

use std::collections::HashMap;

use crate::annex::Repo;
use crate::annex::branch::{self, BRANCH};
use crate::annex::repo::{Blob, CatFile};
use crate::annex::tree;
use crate::error::Result;

/// How many hash directories a key's log path has: 1 when `difference.log` (the blob behind
/// `spec`) records `annex.tune.branchhash1`, else 2.
fn hash_levels(cat: &mut CatFile, spec: Option<Vec<u8>>) -> Result<usize> {
    Ok(match spec {
        Some(spec) => match cat.get(&spec, u64::MAX)? {
            Blob::Content(log) if contains(&log, b"OneLevelBranchHash") => 1,
            _ => 2,
        },
        None => 2,
    })
}

/// Above this many (key, ref) pairs, listing the trees is cheaper than path lookups.
const PATH_LOOKUP_LIMIT: usize = 256;

enum Lookup {
    /// `<ref>:<path>`, resolved by cat-file.
    ByPath,
    /// Blob ids from `ls-tree`, one listing per ref (same order as `AnnexRefs::refs`).
    ByTree(Vec<MetTree>),
}

impl Lookup {
    /// What to ask cat-file for to get `path` in ref number `r`; None when it is not there.
    fn spec(&self, refs: &AnnexRefs, r: usize, path: &str) -> Option<Vec<u8>> {
        match self {
            Lookup::ByPath => Some(format!("{}:{path}", refs.refs.get(r)?).into_bytes()),
            Lookup::ByTree(trees) => {
                let tree = trees.get(r)?;
                let oid = if path == "difference.log" {
                    tree.difference_log.as_ref()
                } else {
                    tree.blobs.get(path.as_bytes())
                };
                oid.map(|oid| oid.clone().into_bytes())
            }
        }
    }
}

/// The refs to read: the local branch (first, when it exists), then every ref git-annex would
/// merge into it before answering ([`branch::unmerged_siblings`]).
struct AnnexRefs {
    branch_exists: bool,
    refs: Vec<String>,
}

fn annex_refs(repo: &Repo) -> Result<AnnexRefs> {
    let (branch_exists, siblings) = match branch::unmerged_siblings(repo)? {
        Some(siblings) => (true, siblings),
        None => (false, branch::tips(repo)?),
    };
    let mut refs: Vec<String> = Vec::new();
    if branch_exists {
        refs.push(BRANCH.to_string());
    }
    refs.extend(siblings.into_iter().map(|t| t.name));
    Ok(AnnexRefs {
        branch_exists,
        refs,
    })
}

/// The metadata logs in one ref's tree: branch path → blob id.
struct MetTree {
    blobs: HashMap<Vec<u8>, String>,
    difference_log: Option<String>,
}

impl MetTree {
    fn list(repo: &Repo, tree_ish: &str) -> Result<MetTree> {
        let listing = repo.git_output(&["ls-tree", "-r", "-z", "--full-tree", tree_ish])?;
        let mut tree = MetTree {
            blobs: HashMap::new(),
            difference_log: None,
        };
        for record in listing.split(|&b| b == 0) {
            // `<mode> SP <type> SP <oid> TAB <path>`
            let Some(tab) = record.iter().position(|&b| b == b'\t') else {
                continue;
            };
            let path = &record[tab + 1..];
            let is_met = path.ends_with(b".log.met");
            if !is_met && path != b"difference.log" {
                continue;
            }
            let Some(oid) = record[..tab]
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|o| std::str::from_utf8(o).ok())
            else {
                continue;
            };
            if is_met {
                tree.blobs.insert(path.to_vec(), oid.to_string());
            } else {
                tree.difference_log = Some(oid.to_string());
            }
        }
        Ok(tree)
    }
}

impl MetTree {
    /// The blobs of `paths` in each of `refs`, found by descending their trees
    /// ([`tree::blob_ids_by_descent`]); no `difference.log`.
    fn descend(
        repo: &Repo,
        cat: &mut CatFile,
        refs: &AnnexRefs,
        paths: &[&str],
    ) -> Result<Vec<MetTree>> {
        if refs.refs.is_empty() {
            return Ok(Vec::new());
        }
        // The descent starts from commit ids (their length says the object format).
        let oids = repo
            .git()
            .arg("rev-parse")
            .args(&refs.refs)
            .stdout_text()
            .map_err(|e| crate::Error::git("cannot resolve the git-annex branches", e))?;
        oids.lines()
            .map(|oid| {
                let ids = tree::blob_ids_by_descent(cat, oid, paths)?;
                let blobs = paths
                    .iter()
                    .zip(ids)
                    .filter(|(_, id)| id.iter().any(|&b| b != b'0'))
                    .filter_map(|(path, id)| {
                        Some((path.as_bytes().to_vec(), String::from_utf8(id).ok()?))
                    })
                    .collect();
                Ok(MetTree {
                    blobs,
                    difference_log: None,
                })
            })
            .collect()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
