//! OWNER: helper "annex-read".

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use crate::annex::Repo;
use crate::annex::metalog;
use crate::annex::repo::{Blob, CatFile};
use crate::error::{Error, Result};
use crate::model::{AnnexKey, FieldSet};

const BRANCH: &str = "refs/heads/git-annex";

/// Current metadata of `keys`, exactly as `git annex metadata` would report it (minus the
/// derived `*lastchanged` fields): branch blob, replaced by the journal file when one exists,
/// union-merged with every `*/git-annex` ref not yet merged. Keys without metadata are absent
/// from the map. One `git cat-file --batch` for all keys; no git-annex process.
pub fn read(repo: &Repo, keys: &[AnnexKey]) -> Result<HashMap<AnnexKey, FieldSet>> {
    let siblings = unmerged_siblings(repo)?;
    let mut cat = CatFile::start(repo)?;
    let levels = match cat.get(b"git-annex:difference.log", u64::MAX)? {
        Blob::Content(log) if contains(&log, b"OneLevelBranchHash") => 1,
        _ => 2,
    };
    let journal = Journal::open(repo)?;

    // Per key: the local version (journal file, else a branch blob still to fetch), then one
    // blob per unmerged sibling ref.
    struct Pending<'k> {
        key: &'k AnnexKey,
        local: Option<Vec<u8>>,
        first_answer: usize,
    }
    let mut unique: HashSet<&AnnexKey> = HashSet::with_capacity(keys.len());
    let mut pending = Vec::with_capacity(keys.len());
    let mut specs: Vec<Vec<u8>> = Vec::with_capacity(keys.len() * (1 + siblings.len()));
    for key in keys {
        // A newline cannot be sent to cat-file; git-annex cannot create such a key anyway.
        if key.as_str().contains('\n') || !unique.insert(key) {
            continue;
        }
        let path = metalog::met_path_levels(key.as_str(), levels);
        let local = journal.read(&path)?;
        let first_answer = specs.len();
        if local.is_none() {
            specs.push(format!("git-annex:{path}").into_bytes());
        }
        for sibling in &siblings {
            specs.push(format!("{sibling}:{path}").into_bytes());
        }
        pending.push(Pending {
            key,
            local,
            first_answer,
        });
    }
    let answers = cat.get_many(&specs, u64::MAX)?;
    cat.finish()?;

    let mut out = HashMap::new();
    for p in pending {
        let fetched = (if p.local.is_none() { 1 } else { 0 }) + siblings.len();
        let mut logs: Vec<&[u8]> = p.local.as_deref().into_iter().collect();
        for answer in &answers[p.first_answer..p.first_answer + fetched] {
            if let Blob::Content(log) = answer {
                logs.push(log);
            }
        }
        let fields = match logs.as_slice() {
            [] => continue,
            [one] => metalog::current(one),
            many => metalog::current(&metalog::union(many)),
        };
        if !fields.is_empty() {
            out.insert(p.key.clone(), fields);
        }
    }
    Ok(out)
}

/// Every ref git-annex would merge into its branch before answering: refs named
/// `…/git-annex` (`git show-ref git-annex`) whose tip the local branch does not contain yet.
fn unmerged_siblings(repo: &Repo) -> Result<Vec<String>> {
    let listed = repo.git_output(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("--no-merged={BRANCH}"),
    ]);
    let refs = match listed {
        Ok(refs) => refs,
        // No local branch yet (a clone before its first git-annex command): nothing is merged.
        Err(_) => repo.git_output(&["for-each-ref", "--format=%(refname)"])?,
    };
    let refs = String::from_utf8(refs)
        .map_err(|_| Error::git("git for-each-ref", "a ref name is not UTF-8"))?;
    Ok(refs
        .lines()
        .filter(|r| r.ends_with("/git-annex") && *r != BRANCH)
        .map(str::to_string)
        .collect())
}

/// The uncommitted branch files git-annex keeps in `annex/journal/`: each one is the complete
/// new content of a branch file and supersedes the committed blob.
struct Journal {
    dir: std::path::PathBuf,
    /// Listed once: stat-ing a journal path per key would cost a syscall per key.
    names: HashSet<OsString>,
}

impl Journal {
    fn open(repo: &Repo) -> Result<Journal> {
        let dir = repo.common_dir.join("annex").join("journal");
        let mut names = HashSet::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry =
                        entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
                    names.insert(entry.file_name());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
        }
        Ok(Journal { dir, names })
    }

    fn read(&self, branch_path: &str) -> Result<Option<Vec<u8>>> {
        if self.names.is_empty() {
            return Ok(None);
        }
        let name = branch_path.replace('_', "__").replace('/', "_");
        if !self.names.contains(std::ffi::OsStr::new(&name)) {
            return Ok(None);
        }
        let path = self.dir.join(&name);
        match std::fs::read(&path) {
            Ok(content) => Ok(Some(content)),
            // Committed to the branch since we listed the directory: the blob has it now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
