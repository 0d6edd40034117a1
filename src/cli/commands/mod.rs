//! One module per subcommand; each takes its arguments and the [`super::Ui`] and returns the
//! exit code (or an error, which `cli::main` reports and maps).

pub mod backup;
pub mod completions;
pub mod demo;
pub mod import;
pub mod init_config;
pub mod restore;
pub mod status;
pub mod sync;
