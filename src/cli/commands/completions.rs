//! `completions SHELL`: print the shell's completion script.

use clap::CommandFactory;

use crate::cli::args::Cli;
use crate::error::{Error, Result};
use crate::exit::ExitCode;

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    crate::completions::write(shell, &mut Cli::command(), &mut std::io::stdout())
        .map_err(|e| Error::io("cannot write the completion script", e))?;
    Ok(ExitCode::Success)
}
