//! Reading the Mixxx library database — strictly read-only.
//!
//! OWNER: helper "mixxx". Interface below is fixed; bodies to be written.

pub mod paths;

use std::path::Path;

use crate::error::Result;

/// Index into [`Library::crate_names`]: tracks refer to crates by id so that memory grows with
/// the number of memberships, not with crate-name bytes × tracks.
pub type CrateId = u32;

/// What the reader learned about the database's schema.
#[derive(Clone, Debug)]
pub struct SchemaInfo {
    /// `settings.mixxx.schema.version`, if present and numeric.
    pub version: Option<u32>,
    pub has_source_synchronized_ms: bool,
    pub has_color: bool,
    pub has_key_id: bool,
}

/// One row of `library` joined with its `track_locations` row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Track {
    pub id: i64,
    /// `track_locations.location`, as raw bytes (SQLite text need not be UTF-8).
    pub location: Vec<u8>,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub year: Option<String>,
    pub tracknumber: Option<String>,
    pub comment: Option<String>,
    pub rating: Option<i64>,
    pub bpm: Option<f64>,
    /// 0xRRGGBB, `None` when NULL or the column does not exist (before rev 31).
    pub color: Option<i64>,
    pub key: Option<String>,
    pub key_id: Option<i64>,
    /// Sorted by crate name.
    pub crates: Vec<CrateId>,
    /// `library.mixxx_deleted = 1` (NULL counts as not deleted).
    pub mixxx_deleted: bool,
    /// `track_locations.fs_deleted = 1`.
    pub fs_deleted: bool,
}

/// All tracks of a database plus the crate-name table they refer to.
#[derive(Clone, Debug, Default)]
pub struct Library {
    pub tracks: Vec<Track>,
    pub crate_names: Vec<String>,
}

impl Library {
    pub fn crate_name(&self, id: CrateId) -> &str {
        &self.crate_names[id as usize]
    }
}

/// An open, read-only Mixxx database.
pub struct MixxxDb {
    _private: (),
}

impl MixxxDb {
    /// Opens `path` read-only, with a bounded busy timeout, and checks it is a Mixxx database.
    pub fn open(_path: &Path) -> Result<MixxxDb> {
        todo!("helper mixxx")
    }

    pub fn schema(&self) -> &SchemaInfo {
        todo!("helper mixxx")
    }

    /// Reads every track in one pass (tracks without a location row are skipped).
    pub fn read_library(&self) -> Result<Library> {
        todo!("helper mixxx")
    }
}
