//! The edge of the program: parse the command line, dispatch to one command, print the
//! error (with its hint, and its causes under `-v`) and pick the exit code.
//!
//! `args` defines the flags, `resolve` turns flags, environment and config into inputs, and
//! `commands` holds one module per subcommand.

pub mod args;
pub mod commands;
pub mod resolve;

use std::io::IsTerminal;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::error::Error;
use crate::exit::ExitCode;
use crate::report::{self, TerminalProgress};
use args::{Cli, Command, MixxxCommand};

/// Set by the first Ctrl-C; writers stop sending when they see it.
pub(crate) static CANCEL: AtomicBool = AtomicBool::new(false);

/// First Ctrl-C: set [`CANCEL`] so the sync commits what git-annex accepted and stops. Second
/// Ctrl-C: exit 130 at once (the user means it).
pub(crate) fn install_sigint_handler() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: the action only touches an atomic and calls the async-signal-safe `_exit`.
        let registered = unsafe {
            signal_hook::low_level::register(signal_hook::consts::SIGINT, || {
                if CANCEL.swap(true, Ordering::SeqCst) {
                    signal_hook::low_level::exit(ExitCode::Interrupted as i32);
                }
            })
        };
        // Without a handler Ctrl-C still stops the program, only less gracefully.
        let _ = registered;
    });
}

/// Output settings shared by the commands.
pub struct Ui {
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
}

impl Ui {
    fn progress(&self) -> TerminalProgress {
        TerminalProgress::new(!self.quiet && std::io::stderr().is_terminal())
    }

    /// How many planned files a human report lists.
    fn preview(&self, all: bool) -> usize {
        if all || self.verbose > 0 {
            usize::MAX
        } else {
            report::PLAN_PREVIEW
        }
    }

    pub fn warn(&self, message: &str) {
        if !self.quiet {
            say_err!("{}: {message}", self.paint("warning", "33"));
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `error: …`, then `hint: …`; with `-v` also every cause below it, as jj prints them.
    fn error(&self, error: &Error) {
        let message = error.to_string();
        say_err!("{}: {message}", self.paint("error", "31"));
        if self.verbose > 0 {
            // A message that already ends with its cause's text does not repeat it.
            let mut causes = Vec::new();
            let mut cause = std::error::Error::source(error);
            while let Some(c) = cause {
                causes.push(c.to_string());
                cause = c.source();
            }
            if causes
                .first()
                .is_some_and(|c| message.ends_with(c.as_str()))
            {
                causes.remove(0);
            }
            if !causes.is_empty() {
                say_err!("Caused by:");
            }
            for (n, c) in causes.iter().enumerate() {
                say_err!("{}: {c}", n + 1);
            }
        }
        if let Some(hint) = error.hint() {
            say_err!("{}: {hint}", self.paint("hint", "36"));
        }
    }
}

/// Parses the command line, runs, and returns the exit code. `main` is only this.
pub fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): see `say_err!`. Output into a closed pipe is
    // a failed write that every print here ignores.
    let cli = Cli::parse();
    let ui = Ui {
        verbose: cli.verbose,
        quiet: cli.quiet,
        color: !cli.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stderr().is_terminal(),
    };
    let result = match &cli.command {
        Command::Sync(args)
        | Command::Mixxx {
            command: MixxxCommand::Sync(args),
        } => commands::sync::run(&cli, args, &ui),
        Command::Import(args) => commands::import::run(&cli, args, &ui),
        Command::Backup(args)
        | Command::Mixxx {
            command: MixxxCommand::Backup(args),
        } => commands::backup::run(&cli, args, &ui),
        Command::Restore(args) => commands::restore::run(&cli, args, &ui),
        Command::Status { json } => commands::status::run(&cli, *json, &ui),
        Command::InitConfig { force, output } => {
            commands::init_config::run(output.as_deref(), *force, &ui)
        }
        Command::Demo { dir } => commands::demo::run(dir.as_deref(), &ui),
        Command::Completions { shell } => commands::completions::run(*shell),
    };
    result.unwrap_or_else(|error| {
        ui.error(&error);
        error.exit_code()
    })
}
