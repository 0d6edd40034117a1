//! Everything music-commander needs from git and git-annex.
//!
//! - [`repo`]: find and check the repository, run git / git-annex commands.
//! - [`adjusted`]: read an adjusted branch's files from the branch it adjusts.
//! - [`keys`]: map work-tree files to annex keys in one bulk pass.
//! - [`lock`]: one writing run per repository.
//! - [`metalog`]: parse `.log.met` files with git-annex's semantics.
//! - [`snapshot`]: current metadata of many keys, read from the git-annex branch + journal.
//! - [`writer`]: pipelined `git annex metadata --batch --json` writers with commit control.
//! - [`state`]: the sync record stored on a made-up key in the git-annex branch.

pub mod adjusted;
pub mod cache;
pub mod keys;
pub mod lock;
pub mod metalog;
pub mod repo;
pub mod snapshot;
pub mod state;
pub mod writer;

pub use keys::{Entry, KeyMap};
pub use repo::Repo;
