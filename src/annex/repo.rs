//! OWNER: helper "annex-read".

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;

/// The minimum git-annex version: Debian stable's.
pub const MIN_ANNEX_VERSION: &str = "10.20230126";

/// A checked git-annex repository with a work tree.
#[derive(Clone, Debug)]
pub struct Repo {
    /// Absolute, canonical work-tree root.
    pub root: PathBuf,
    /// Absolute git directory (`.git`, or what a `.git` file points to).
    pub git_dir: PathBuf,
    /// This clone's git-annex UUID (`annex.uuid`).
    pub uuid: String,
    /// `git annex version --raw`.
    pub annex_version: String,
}

impl Repo {
    /// Finds the work tree containing `start` and checks git-annex is installed (≥ MIN),
    /// and the repository is annex-initialized. Errors: NotGitRepo, BareRepo, AnnexMissing,
    /// AnnexTooOld, NotAnnexRepo.
    pub fn discover(_start: &Path) -> Result<Repo> {
        todo!("helper annex-read")
    }

    /// `git` with cwd = root and no pager / no quoting surprises.
    pub fn git(&self) -> Command {
        todo!("helper annex-read")
    }

    /// `git annex` with cwd = root.
    pub fn annex(&self) -> Command {
        todo!("helper annex-read")
    }
}
