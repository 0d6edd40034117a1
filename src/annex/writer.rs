//! Writing metadata through git-annex. OWNER: helper "annex-write".

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use crate::annex::Repo;
use crate::error::Result;
use crate::model::AnnexKey;

/// One metadata change for one key: each named field is replaced by exactly these values;
/// an empty list removes the field. Fields not named are left untouched by git-annex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub key: AnnexKey,
    pub fields: BTreeMap<String, Vec<String>>,
}

/// The failure reason of requests never sent because the run was cancelled.
pub const INTERRUPTED: &str = "interrupted";

#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Number of concurrent `git annex metadata --batch` processes (≥ 1).
    pub jobs: usize,
    /// Commit the git-annex branch after every this many requests (None: once at the end).
    pub batch_size: Option<usize>,
    /// Subject of the git-annex branch commit(s).
    pub commit_message: String,
}

#[derive(Debug, Default)]
pub struct WriteReport {
    /// Keys git-annex confirmed, in no particular order.
    pub written: Vec<AnnexKey>,
    /// Keys that were not written, with git-annex's reason (or "writer died", "interrupted").
    pub failed: Vec<(AnnexKey, String)>,
    /// Commits added to the git-annex branch by this write.
    pub commits: usize,
    /// True when `cancel` stopped the run early.
    pub interrupted: bool,
}

/// Checks a field name the way git-annex does (ASCII subset: `[A-Za-z0-9][A-Za-z0-9_.-]*`,
/// and not ending in `lastchanged`, which git-annex silently discards).
pub fn validate_field_name(_name: &str) -> std::result::Result<(), String> {
    todo!("helper annex-write")
}

/// Applies `requests` (then `last`, which lands in the final commit — used for the sync
/// record). Requests are validated first; an invalid one becomes a failure, never a dead
/// batch process. `progress` is called with the number of replies received so far.
/// When `cancel` becomes true, no new requests are sent; replies already due are collected
/// and committed.
pub fn write(
    _repo: &Repo,
    _requests: Vec<WriteRequest>,
    _last: Option<WriteRequest>,
    _opts: &WriteOptions,
    _progress: &(dyn Fn(usize) + Sync),
    _cancel: &AtomicBool,
) -> Result<WriteReport> {
    todo!("helper annex-write")
}
