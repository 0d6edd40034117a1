//! The sync record, stored as metadata of a made-up key in the git-annex branch: it travels
//! with `git annex sync` and never puts a file in the work tree. OWNER: helper "annex-write".

use crate::annex::Repo;
use crate::annex::writer::WriteRequest;
use crate::error::Result;

/// The made-up key; no file points to it.
pub const STATE_KEY: &str = "WORM-s0-m0--music-commander-sync-state";

/// One clone's most recent completed sync. Each clone writes only fields prefixed with its own
/// UUID, so concurrent syncs in different clones never produce multi-valued fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncRecord {
    pub uuid: String,
    /// The clone's git-annex description (from `uuid.log`), when known; not stored by us.
    pub description: Option<String>,
    /// UTC, RFC 3339, seconds precision: `2026-11-27T05:08:02Z`.
    pub time: String,
    pub mixxx_db: String,
    pub tool_version: String,
    pub tracks: u64,
    pub written: u64,
    pub failed: u64,
}

/// The write request that records `record`.
pub fn request(_record: &SyncRecord) -> WriteRequest {
    todo!("helper annex-write")
}

/// Every clone's record, sorted by time (newest first).
pub fn read_all(_repo: &Repo) -> Result<Vec<SyncRecord>> {
    todo!("helper annex-write")
}

/// Now, as RFC 3339 UTC with seconds precision.
pub fn now_rfc3339() -> String {
    todo!("helper annex-write")
}
