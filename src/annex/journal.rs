//! git-annex's journal: the branch files it has changed but not committed yet, kept in
//! `annex/journal/`. Each is the complete new content of a branch file and supersedes the
//! committed blob.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use crate::annex::Repo;
use crate::annex::branch::BRANCH;
use crate::error::{Error, Result};

/// The journal file holding branch file `branch_path`: git-annex escapes `_` as `__`, then
/// turns `/` into `_` (Annex/Journal.hs `journalFile`).
fn file_name(branch_path: &str) -> String {
    branch_path.replace('_', "__").replace('/', "_")
}

/// Branch file `branch_path` as git-annex reads it: the journal's copy, complete, when there
/// is one, else the local branch's blob; None when neither has it.
pub(crate) fn read_current(repo: &Repo, branch_path: &str) -> Result<Option<Vec<u8>>> {
    if let Some(content) = Journal::open(repo)?.read(branch_path, true)? {
        return Ok(Some(content));
    }
    Ok(repo
        .git_output(&["cat-file", "blob", &format!("{BRANCH}:{branch_path}")])
        .ok())
}

/// The uncommitted branch files git-annex keeps in `annex/journal/`: each one is the complete
/// new content of a branch file and supersedes the committed blob.
pub(crate) struct Journal {
    dir: std::path::PathBuf,
    /// Listed once: stat-ing a journal path per key would cost a syscall per key.
    names: HashSet<OsString>,
    /// Every file's content, when read up front by [`Journal::preload`].
    contents: Option<HashMap<OsString, Vec<u8>>>,
}

impl Journal {
    pub(crate) fn open(repo: &Repo) -> Result<Journal> {
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
        Ok(Journal {
            dir,
            names,
            contents: None,
        })
    }

    /// Reads every journal file now. Done before the branch head is read, the journal and the
    /// head fit together: git-annex deletes a journal file only after committing it, so a
    /// file gone by now is in that head, and a file read now is at least as new as the head.
    pub(crate) fn preload(&mut self) -> Result<()> {
        let mut contents = HashMap::with_capacity(self.names.len());
        for name in &self.names {
            let path = self.dir.join(name);
            match std::fs::read(&path) {
                Ok(content) => {
                    contents.insert(name.clone(), content);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
            }
        }
        self.names.retain(|n| contents.contains_key(n));
        self.contents = Some(contents);
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What the journal holds, as bytes that differ whenever a file appears, goes or changes
    /// (names sorted, each with its preloaded content, or its name alone before a preload).
    pub(crate) fn fingerprint(&self) -> Vec<u8> {
        let mut names: Vec<&OsString> = self.names.iter().collect();
        names.sort_unstable();
        let mut out = Vec::new();
        for name in names {
            let bytes = name.as_encoded_bytes();
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
            if let Some(content) = self.contents.as_ref().and_then(|c| c.get(name)) {
                out.extend_from_slice(&(content.len() as u64).to_le_bytes());
                out.extend_from_slice(content);
            }
        }
        out
    }

    /// With `merging`, the content git-annex commits before a union merge (all of it);
    /// otherwise what it reads from the journal directly (complete lines only).
    pub(crate) fn read(&self, branch_path: &str, merging: bool) -> Result<Option<Vec<u8>>> {
        if self.names.is_empty() {
            return Ok(None);
        }
        let name = file_name(branch_path);
        if !self.names.contains(std::ffi::OsStr::new(&name)) {
            return Ok(None);
        }
        let path = self.dir.join(&name);
        let read = match &self.contents {
            Some(contents) => Ok(contents[std::ffi::OsStr::new(&name)].clone()),
            None => std::fs::read(&path),
        };
        match read {
            Ok(mut content) => {
                // Reading the journal, git-annex drops an unterminated last line (it may be an
                // append in progress); committing it, as before a merge, keeps it.
                if !merging {
                    let complete = content.iter().rposition(|&b| b == b'\n');
                    content.truncate(complete.map_or(0, |i| i + 1));
                }
                Ok(Some(content))
            }
            // Committed to the branch since we listed the directory: the blob has it now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }
}
