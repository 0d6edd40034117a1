//! Mapping Mixxx's absolute track locations onto repository paths.
//!
//! OWNER: helper "mixxx".

use std::path::Path;

use crate::model::RepoPath;

/// Why a location could not be mapped into the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// The location lies outside the music root.
    OutsideRoot,
}

/// Maps locations by stripping the music root. Tries the configured spelling, then the
/// canonical (symlink-resolved) one; compares Unicode NFC-normalized.
pub struct PathMapper {
    _private: (),
}

impl PathMapper {
    /// `repo_root`: the work tree; `music_root`: `mixxx_music_root` from the config, if set
    /// (the folder that, in Mixxx's stored paths, corresponds to the repository root).
    pub fn new(_repo_root: &Path, _music_root: Option<&Path>) -> PathMapper {
        todo!("helper mixxx")
    }

    /// The repository-relative path of a Mixxx location (NFC-normalized when it is UTF-8).
    pub fn map(&mut self, _location: &[u8]) -> Result<RepoPath, Unmapped> {
        todo!("helper mixxx")
    }
}
