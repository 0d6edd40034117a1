//! OWNER: helper "annex-read".

use std::collections::HashMap;

use crate::annex::Repo;
use crate::error::Result;
use crate::model::{AnnexKey, RepoPath};

/// What the index says a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An annexed file (locked or unlocked, content present or not, committed or only staged).
    Annexed(AnnexKey),
    /// A file tracked by git but not annexed.
    Plain,
}

/// Every path in the index (optionally filtered), with what it is.
#[derive(Debug, Default)]
pub struct KeyMap {
    entries: HashMap<RepoPath, Entry>,
}

impl KeyMap {
    /// Reads the index in one bulk pass (`git ls-files -s -z` + one `git cat-file --batch`).
    /// Only paths for which `wanted` is true are resolved to keys (and kept).
    pub fn read(_repo: &Repo, _wanted: &dyn Fn(&RepoPath) -> bool) -> Result<KeyMap> {
        todo!("helper annex-read")
    }

    /// Looks up a path exactly, else by its Unicode NFC form (a file committed from macOS may
    /// be NFD in the index while Mixxx stored NFC, or the other way round). Returns the path
    /// as the index spells it.
    pub fn get(&self, _path: &RepoPath) -> Option<(&RepoPath, &Entry)> {
        todo!("helper annex-read")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RepoPath, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
