//! music-commander: store the curation a DJ did in Mixxx as git-annex metadata.
//!
//! Data flows one way: [`mixxx`] (read the database) → [`sync`] (desired fields, plan, apply)
//! → [`annex`] (keys, current metadata, writer, sync state); [`report`] renders the result,
//! [`cli`] wires flags, environment and [`config`] to it. See ARCHITECTURE.md.

/// `eprintln!` that never panics. SIGPIPE is ignored (the Rust default): a git or git-annex
/// child that dies while this process writes to it must be a per-file failure, never the end
/// of a sync between its write and its base. So a closed stderr (`2>&1 | head`) is a failed
/// write here, and is ignored.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` that never panics (see `say_err!`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

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
