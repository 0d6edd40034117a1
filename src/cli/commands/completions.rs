//! `completions SHELL`: print clap's completion script.

use clap::CommandFactory;

use crate::cli::args::Cli;
use crate::exit::ExitCode;

pub fn run(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "music-commander",
        &mut std::io::stdout(),
    );
    ExitCode::Success
}
