//! The library's error type. Every variant names the thing that is wrong; `hint()` says how to
//! fix it; `exit_code()` is the one place that maps an error to the documented exit codes.

use std::path::PathBuf;

use crate::exit::ExitCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an I/O operation was about, so that its failure maps to the exit code of that thing
/// rather than to "some files failed".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoSubject {
    /// Reading the repository or running git and git-annex on it (exit 3).
    Repository,
    /// Reading or writing the config file (exit 2).
    Config,
    /// Paths and directories named on the command line, the current directory (exit 2).
    Arguments,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line arguments or values that clap could not catch.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    #[error("config file {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("Mixxx database not found: {path}")]
    MixxxDbMissing { path: PathBuf },

    #[error("not a Mixxx database: {path} ({reason})")]
    MixxxDbNotMixxx { path: PathBuf, reason: String },

    #[error("Mixxx database {path} is locked — is Mixxx writing right now?")]
    MixxxDbLocked { path: PathBuf },

    /// Writing the database while Mixxx runs would be undone by Mixxx's cached rows.
    #[error(
        "Mixxx is running (process {pid} {name:?}); {path} is written only while Mixxx is closed"
    )]
    MixxxRunning {
        pid: u32,
        name: String,
        path: PathBuf,
    },

    #[error("cannot read Mixxx database {path}: {detail}")]
    MixxxDbUnreadable { path: PathBuf, detail: String },

    /// A write to the Mixxx database failed and was rolled back: the database is as before.
    #[error("could not write Mixxx database {path} (rolled back, nothing changed): {detail}")]
    MixxxDbWriteFailed { path: PathBuf, detail: String },

    /// Mixxx has tracks and none of them is under the music root: the root is wrong, and a
    /// sync would report "nothing to sync" while syncing nothing.
    #[error(
        "none of the {tracks} Mixxx tracks is under the music root {root}; most of their locations start with {folder:?}",
        root = root.display()
    )]
    WrongMusicRoot {
        tracks: usize,
        root: PathBuf,
        folder: String,
    },

    /// `restore BACKUP` names no backup `restore --list` shows (or there is none at all).
    #[error("{message}")]
    BackupNotFound { message: String },

    /// The chosen backup's content is not in this clone and `git annex get` could not fetch it.
    #[error("the content of backup {id} is not in this clone and could not be fetched: {reason}")]
    BackupContentMissing {
        id: String,
        key: String,
        reason: String,
    },

    /// The chosen backup is not a database SQLite reads whole.
    #[error("backup {id} is damaged: {detail}")]
    BackupDamaged { id: String, detail: String },

    #[error("not a git repository: {path}")]
    NotGitRepo { path: PathBuf },

    #[error("git repository {path} has no work tree (bare repository)")]
    BareRepo { path: PathBuf },

    #[error("git-annex is not initialized in {path}")]
    NotAnnexRepo { path: PathBuf },

    #[error("git-annex is not installed (no `git annex` command found)")]
    AnnexMissing,

    #[error("git-annex {found} is too old; music-commander needs {needed} or newer")]
    AnnexTooOld { found: String, needed: String },

    /// Another run holds the repository's lock and did not finish within the wait.
    #[error("the repository is in use by {holder}")]
    RepositoryLocked { holder: String, lock: PathBuf },

    /// A git or git-annex process failed in a way that is not per-file. The message says
    /// what music-commander was doing and why it failed; the command line is in the source.
    #[error("{context}: {}", source.reason())]
    Git {
        context: String,
        #[source]
        source: crate::annex::git::CommandError,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        /// What the failed I/O was for; decides the exit code.
        subject: IoSubject,
        #[source]
        source: std::io::Error,
    },

    #[error("interrupted")]
    Interrupted,
}

/// The hint for a music root that does not match Mixxx's locations: the folder that, in
/// Mixxx's paths, is the repository.
pub fn music_root_hint(folder: &str) -> String {
    format!(
        "set mixxx_music_root = {folder:?} in the config (or MUSIC_COMMANDER_MUSIC_ROOT) to the folder that is this repository in Mixxx's paths"
    )
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// I/O on the repository or its git processes, the library's usual I/O.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::io_about(IoSubject::Repository, context, source)
    }

    pub fn io_about(
        subject: IoSubject,
        context: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context: context.into(),
            subject,
            source,
        }
    }

    pub fn git(context: impl Into<String>, source: crate::annex::git::CommandError) -> Self {
        Error::Git {
            context: context.into(),
            source,
        }
    }

    /// A one-line suggestion for fixing the problem, where one exists.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Config { path, .. } => Some(format!(
                "fix the file, or run `music-commander init-config --force -o {}` for a fresh commented one",
                path.display()
            )),
            Error::MixxxDbMissing { .. } => Some(
                "pass --mixxx-db FILE or set [paths] mixxx_db in the config (Mixxx keeps it at ~/.mixxx/mixxxdb.sqlite on Linux)"
                    .into(),
            ),
            Error::MixxxDbNotMixxx { .. } => Some(
                "point --mixxx-db at Mixxx's mixxxdb.sqlite (start Mixxx once to create it)".into(),
            ),
            Error::MixxxDbLocked { .. } => {
                Some("wait until Mixxx has finished saving, or close Mixxx, and run again".into())
            }
            Error::MixxxRunning { .. } => {
                Some("quit Mixxx (File › Exit), then run the command again".into())
            }
            Error::MixxxDbUnreadable { .. } => Some(
                "check the file's permissions, or restore it from a backup if it is damaged".into(),
            ),
            Error::MixxxDbWriteFailed { .. } => Some(
                "the database is as it was before the command; `music-commander restore --list` shows the backups if it is damaged".into(),
            ),
            Error::WrongMusicRoot { folder, .. } => Some(music_root_hint(folder)),
            Error::BackupNotFound { .. } => Some(
                "`music-commander restore --list` shows the backups and their ids; `music-commander backup` makes one".into(),
            ),
            Error::BackupContentMissing { key, .. } => Some(format!(
                "`git annex whereis --key {key}` shows which clones have it; fetch it with `git annex get --key {key} --from REMOTE` (or `git annex sync --content`), then run restore again"
            )),
            Error::BackupDamaged { .. } => Some(
                "choose another backup (`music-commander restore --list`); the Mixxx database was not changed".into(),
            ),
            Error::NotGitRepo { .. } => Some(
                "run inside your git-annex music repository, or pass --repo DIR (or set [paths] music_repo)".into(),
            ),
            Error::BareRepo { .. } => {
                Some("point --repo at a clone with a work tree (`git clone` the bare repository)".into())
            }
            Error::NotAnnexRepo { .. } => Some("run `git annex init` in the repository".into()),
            Error::AnnexMissing => Some(
                "install it: `sudo apt-get install git-annex` (Debian/Ubuntu), `brew install git-annex` (macOS)".into(),
            ),
            Error::AnnexTooOld { .. } => Some(
                "upgrade git-annex (Debian: `sudo apt-get install -t bookworm-backports git-annex`, or the standalone build)"
                    .into(),
            ),
            Error::Io {
                subject: IoSubject::Repository,
                context,
                source,
            } if source.kind() == std::io::ErrorKind::NotFound
                && context.starts_with("cannot run git") =>
            {
                Some("install git (and git-annex) and make sure it is on PATH".into())
            }
            Error::RepositoryLocked { lock, .. } => Some(format!(
                "run again once it has finished; if no music-commander is running, delete {}",
                lock.display()
            )),
            Error::Git { source, .. } if source.is_missing_identity() => Some(
                "set one: git config --global user.email you@example.com && git config --global user.name \"Your Name\"".into(),
            ),
            Error::Git { .. } | Error::Io { .. } | Error::Interrupted => None,
        }
    }

    /// The one mapping from an error to the exit codes the README documents: 2 for what the
    /// user named (arguments, config, Mixxx database), 3 for the repository and the git tools,
    /// 130 for Ctrl-C. Exit 1 is never an error: it is a finished run with failed files.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. }
            | Error::Config { .. }
            | Error::Io {
                subject: IoSubject::Config | IoSubject::Arguments,
                ..
            }
            | Error::MixxxDbMissing { .. }
            | Error::MixxxDbNotMixxx { .. }
            | Error::MixxxDbLocked { .. }
            | Error::MixxxRunning { .. }
            | Error::MixxxDbUnreadable { .. }
            | Error::MixxxDbWriteFailed { .. }
            | Error::WrongMusicRoot { .. }
            | Error::BackupNotFound { .. }
            | Error::BackupDamaged { .. } => ExitCode::Usage,
            Error::NotGitRepo { .. }
            | Error::BareRepo { .. }
            | Error::NotAnnexRepo { .. }
            | Error::AnnexMissing
            | Error::AnnexTooOld { .. }
            | Error::RepositoryLocked { .. }
            | Error::BackupContentMissing { .. }
            | Error::Git { .. }
            | Error::Io {
                subject: IoSubject::Repository,
                ..
            } => ExitCode::Repository,
            Error::Interrupted => ExitCode::Interrupted,
        }
    }
}
