//! music-commander: store the curation a DJ did in Mixxx as git-annex metadata.
//!
//! Data flows one way: [`mixxx`] (read the database) → [`sync`] (desired fields, plan, apply)
//! → [`annex`] (keys, current metadata, writer, sync state); [`report`] renders the result,
//! [`cli`] wires flags, environment and [`config`] to it. See ARCHITECTURE.md.

pub mod annex;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod exit;
pub mod mixxx;
pub mod model;
pub mod report;
pub mod sync;

pub use error::{Error, Result};
