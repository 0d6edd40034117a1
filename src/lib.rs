//! music-commander: store the curation a DJ did in Mixxx as git-annex metadata.
//!
//! Data flows one way: [`mixxx`] (read the database) → [`sync`] (desired fields, plan, apply)
//! → [`annex`] (keys, current metadata, writer, sync state); [`report`] renders the result,
//! [`cli`] wires flags, environment and [`config`] to it. See ARCHITECTURE.md.

// Public: what the binary, the tests and crates/testutils use. The rest is private so the
// compiler reports what nothing calls.
pub mod annex;
pub mod mixxx;
pub mod model;
pub mod sync;

mod cli;
mod completions;
mod config;
mod demo;
mod error;
mod exit;
mod fingerprint;
mod quote;
mod report;

pub use cli::main;
pub use error::{Error, Result};
