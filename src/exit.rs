//! The documented exit codes, in one enum at the edge of the program.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything done, including "nothing to do".
    Success = 0,
    /// The run finished but some files could not be synced (listed in the summary).
    Failure = 1,
    /// Bad invocation (including paths that cannot be read or written), bad config (also a
    /// failed config write), or an unusable Mixxx database.
    Usage = 2,
    /// Repository problem: not git, not git-annex, git or git-annex missing or too old, a git
    /// process or repository read failing, or in use by another sync.
    Repository = 3,
    /// Stopped by Ctrl-C after committing what git-annex had accepted.
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
