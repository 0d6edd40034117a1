//! Everything music-commander needs from git and git-annex.
//!
//! - [`git`]: the builder every git and git-annex process is started with.
//! - [`repo`]: find and check the repository.
//! - [`adjusted`]: read an adjusted branch's files from the branch it adjusts.
//! - [`backups`]: Mixxx database backups as versions of an annexed file.
//! - [`keys`]: map work-tree files to annex keys in one bulk pass.
//! - [`lock`]: one writing run per repository.
//! - [`metalog`]: parse `.log.met` files with git-annex's semantics.
//! - [`journal`]: git-annex's uncommitted branch files, which supersede the branch.
//! - [`snapshot`]: current metadata of many keys, read from the git-annex branch + journal.
//! - [`request`]: one metadata change for one key.
//! - [`branch`]: git-annex branch plumbing (head, journal commit, merging other clones).
//! - [`writer`]: pipelined `git annex metadata --batch --json` writers with commit control.
//! - [`state`]: the sync record stored on a made-up key in the git-annex branch.
//! - [`sample`]: a sample repository for `music-commander demo` (and the tests).

pub mod adjusted;
pub mod backups;
pub mod branch;
pub mod cache;
pub mod git;
pub(crate) mod journal;
pub mod keys;
pub mod lock;
pub mod metalog;
pub mod repo;
pub mod request;
pub mod sample;
pub mod snapshot;
pub mod state;
pub(crate) mod tree;
pub mod writer;

pub use git::{CommandError, Git};
pub use keys::{Entry, KeyMap};
pub use repo::Repo;
