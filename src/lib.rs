//! music-commander: store the curation a DJ did in Mixxx as git-annex metadata.
//!
//! Data flows one way: [`mixxx`] (read the database) → [`sync`] (desired fields, plan, apply)
//! → [`annex`] (keys, current metadata, writer, sync state); [`report`] renders the result.
//! See ARCHITECTURE.md.

pub mod annex;
pub mod error;
pub mod exit;
pub mod fixture;
pub mod mixxx;
pub mod model;

pub use error::{Error, Result};
