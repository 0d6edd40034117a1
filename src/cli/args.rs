//! The command line's shape: every flag and subcommand, as clap derives them. Values are only
//! parsed here; what they mean after environment and config are consulted is `resolve`'s job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::resolve::{CONFIG, MIXXX_DB, REPO, WRITER};

#[derive(Debug, Parser)]
#[command(
    name = "music-commander",
    version,
    about = "Store your Mixxx curation (ratings, BPM, key, color, tags, crates) as git-annex metadata",
    long_about = None,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    #[arg(long, global = true, value_name = "FILE", help = CONFIG.flag_help())]
    pub config: Option<PathBuf>,

    #[arg(long, global = true, value_name = "DIR", help = REPO.flag_help())]
    pub repo: Option<PathBuf>,

    #[arg(long, global = true, value_name = "FILE", help = MIXXX_DB.flag_help())]
    pub mixxx_db: Option<PathBuf>,

    #[arg(long, global = true, value_name = "WHO", help = WRITER.flag_help())]
    pub writer: Option<WriterArg>,

    /// More detail: every planned file, per-phase timings
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors and failures
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Never color output (also: NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy Mixxx's ratings, BPM, key, color, tags and crates into git-annex metadata
    #[command(visible_alias = "sync-metadata")]
    Sync(SyncArgs),
    /// Mixxx commands (`mixxx sync` is `sync`, `mixxx backup` is `backup`)
    Mixxx {
        #[command(subcommand)]
        command: MixxxCommand,
    },
    /// Bring the repository's curation (incoming changes) into this Mixxx's database
    Import(ImportArgs),
    /// What a sync would do now, and when each clone last synced
    Status {
        /// One JSON document instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Commit a snapshot of the Mixxx database to the repository (annexed)
    Backup(BackupArgs),
    /// Write a backup back over the Mixxx database (`--list` shows them)
    Restore(RestoreArgs),
    /// Write a commented config file with every key
    InitConfig {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
        /// Where to write [default: the default config path]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Build a sample Mixxx library and git-annex repository in DIR and sync it
    Demo {
        /// Where to build it [default: a new temporary directory]
        dir: Option<PathBuf>,
    },
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum MixxxCommand {
    /// Same as `music-commander sync`
    Sync(SyncArgs),
    /// Same as `music-commander backup`
    Backup(BackupArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// Commit message [default: names this machine and the time]
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RestoreArgs {
    /// List every backup this machine can restore, newest first, with its id
    #[arg(long)]
    pub list: bool,

    /// With --list: one JSON document instead of the table
    #[arg(long, requires = "list")]
    pub json: bool,

    /// Which backup: its number in `--list` (1 = newest), `local:FILE`, or `COMMIT:PATH` [default: the newest]
    #[arg(value_name = "BACKUP", conflicts_with = "list")]
    pub backup: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    /// Re-read everything from scratch (no caches) and report every track; the result is the same as a plain sync
    #[arg(short, long)]
    pub all: bool,

    /// Show the plan, write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Commit the git-annex branch after every N files [default: one commit per sync]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,

    /// Parallel git-annex writers (`--writer git-annex` only)
    #[arg(short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,

    /// One JSON document instead of the table
    #[arg(long)]
    pub json: bool,

    /// Settle conflicts: `mixxx` writes this machine's value, `repo` keeps the repository's
    #[arg(long, value_name = "SIDE")]
    pub prefer: Option<PreferArg>,

    /// Only files in these files or folders (relative to the current directory, or absolute)
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Show the plan, write nothing (not even a backup)
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// One JSON document instead of the table
    #[arg(long)]
    pub json: bool,

    /// Settle conflicts: `repo` writes the repository's value into Mixxx, `mixxx` keeps this Mixxx's (the next `sync --prefer mixxx` sends it)
    #[arg(long, value_name = "SIDE")]
    pub prefer: Option<PreferArg>,

    /// Only files in these files or folders (relative to the current directory, or absolute)
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

/// Who writes the git-annex branch (`--writer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WriterArg {
    // Documented by the setting's help (one line, like every other flag).
    Direct,
    GitAnnex,
}

impl From<WriterArg> for crate::annex::writer::Writer {
    fn from(arg: WriterArg) -> Self {
        match arg {
            WriterArg::Direct => crate::annex::writer::Writer::Direct,
            WriterArg::GitAnnex => crate::annex::writer::Writer::GitAnnex,
        }
    }
}

/// The side `--prefer` settles conflicts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PreferArg {
    /// This machine's Mixxx
    Mixxx,
    /// The repository (another clone's value)
    Repo,
}

impl From<Option<PreferArg>> for crate::sync::merge::Prefer {
    fn from(arg: Option<PreferArg>) -> Self {
        match arg {
            None => crate::sync::merge::Prefer::Neither,
            Some(PreferArg::Mixxx) => crate::sync::merge::Prefer::Mixxx,
            Some(PreferArg::Repo) => crate::sync::merge::Prefer::Repo,
        }
    }
}
