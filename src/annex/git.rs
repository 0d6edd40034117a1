//! The one way music-commander starts git and git-annex: a command builder in the style of
//! cargo's `ProcessBuilder`.
//!
//! Every process it starts
//! - runs `git --no-pager -c core.quotepath=off …`, so output is never paged and paths are
//!   printed as they are instead of as octal escapes;
//! - forgets the repository an outer git may have handed down (`GIT_DIR`, `GIT_WORK_TREE`,
//!   `GIT_INDEX_FILE`, …, see [`REPO_ENV`]): music-commander always addresses a repository by
//!   its work tree (the working directory), and an inherited `GIT_DIR` would silently point
//!   every command at another repository;
//! - prints git's messages untranslated (`LC_MESSAGES=C`) while keeping the user's character
//!   encoding: git-annex decodes file names with it, and what we feed its batch mode is ASCII
//!   either way (see `writer::batch`);
//! - runs in its own process group, so a Ctrl-C in the terminal reaches only music-commander,
//!   which then decides when a child stops instead of it dying halfway through a write.
//!
//! A failure is a [`CommandError`] carrying the command line, the exit status and stderr.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

/// Environment variables through which an outer git (a hook, `git -C x exec`, a user's shell)
/// names a repository; removed from every child. git's own list is `local_repo_env`.
pub const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
];

/// Arguments every git invocation starts with; not shown in [`Git`]'s `Display`.
const PREAMBLE: &[&str] = &["--no-pager", "-c", "core.quotepath=off"];

/// Arguments shown before the command line is shortened (a `git add -- <100,000 paths>`).
const SHOWN_ARGS: usize = 12;

/// How much of stderr a [`CommandError`] keeps.
const STDERR_KEPT: usize = 4000;

/// A git command to run: arguments, working directory, extra environment and stdin.
#[derive(Clone, Debug, Default)]
pub struct Git {
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
}

/// Why a git command did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The process ran and exited unsuccessfully (non-zero or killed by a signal).
    #[error("`{command}` failed ({status}){}", colon(stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// The process ran but its answer is not what its protocol promises.
    #[error("`{command}`: {detail}")]
    Protocol { command: String, detail: String },
}

fn colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

impl CommandError {
    /// What went wrong, without the command line: for a message that starts with what
    /// music-commander was doing.
    pub fn reason(&self) -> String {
        match self {
            CommandError::Spawn { source, .. } => format!("cannot run git: {source}"),
            CommandError::Failed { status, stderr, .. } if stderr.is_empty() => {
                format!("git failed ({status})")
            }
            CommandError::Failed { .. } if self.is_missing_identity() => {
                "git has no identity to commit with (user.name and user.email are not set)".into()
            }
            // Errors are one line; git's full text stays in the source chain (`-v`). The
            // first line says what went wrong; later ones quote internal command lines.
            CommandError::Failed { stderr, .. } => {
                let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
                let first = first.unwrap_or_default();
                first
                    .strip_prefix("git-annex: ")
                    .or_else(|| first.strip_prefix("fatal: "))
                    .unwrap_or(first)
                    .to_string()
            }
            CommandError::Protocol { detail, .. } => detail.clone(),
        }
    }

    /// git refused to commit because it does not know who commits (no `user.email`).
    pub fn is_missing_identity(&self) -> bool {
        match self {
            CommandError::Failed { stderr, .. } => {
                stderr.contains("Please tell me who you are")
                    || stderr.contains("unable to auto-detect email address")
                    || stderr.contains("empty ident name")
            }
            _ => false,
        }
    }

    /// The command line, as [`Git`] displays it.
    pub fn command(&self) -> &str {
        match self {
            CommandError::Spawn { command, .. }
            | CommandError::Failed { command, .. }
            | CommandError::Protocol { command, .. } => command,
        }
    }

    /// The exit status, when the process ran to its end.
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            CommandError::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Git {
    /// `git` in the current directory.
    pub fn new() -> Git {
        Git::default()
    }

    /// `git` with `dir` as working directory.
    pub fn in_dir(dir: impl AsRef<Path>) -> Git {
        Git::new().cwd(dir)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Git {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Git {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Git {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Git {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Bytes fed to the process's stdin (by a thread, so a chatty `--batch` process cannot
    /// deadlock on a full pipe). Without it stdin is `/dev/null` for [`Git::output`].
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Git {
        self.stdin = Some(input.into());
        self
    }

    /// The `std::process::Command` this builder describes, stdio left to the caller.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(PREAMBLE).args(&self.args).process_group(0);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for var in REPO_ENV {
            cmd.env_remove(var);
        }
        // LC_ALL would override LC_MESSAGES: keep what it says about the encoding only.
        if let Some(all) = std::env::var_os("LC_ALL").filter(|v| !v.is_empty()) {
            cmd.env_remove("LC_ALL").env("LC_CTYPE", all);
        }
        cmd.env("LC_MESSAGES", "C").env_remove("LANGUAGE");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs to the end and returns whatever it produced, success or not; an error only when
    /// it cannot be started. For commands whose exit code is an answer (`git config --get`).
    pub fn output(&self) -> Result<Output, CommandError> {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let Some(input) = &self.stdin else {
            return cmd
                .stdin(Stdio::null())
                .output()
                .map_err(|e| self.spawn_error(e));
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (out, err) = std::thread::scope(|scope| {
            scope.spawn(move || {
                // A write error means the child died; its exit status says why.
                let _ = stdin.write_all(input);
            });
            let err = scope.spawn(move || {
                let mut err = Vec::new();
                let _ = stderr.read_to_end(&mut err);
                err
            });
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            (out, err.join().unwrap_or_default())
        });
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    }

    /// Runs to the end and returns stdout; a failed exit is an error carrying stderr.
    pub fn stdout_bytes(&self) -> Result<Vec<u8>, CommandError> {
        let out = self.output()?;
        if !out.status.success() {
            return Err(self.failed(out.status, &out.stderr));
        }
        Ok(out.stdout)
    }

    /// [`Git::stdout_bytes`] as text (lossy: git output is UTF-8 unless a name is not).
    pub fn stdout_text(&self) -> Result<String, CommandError> {
        self.stdout_bytes()
            .map(|out| String::from_utf8_lossy(&out).into_owned())
    }

    /// Starts the process with the given stdio, for callers that talk to it through pipes.
    pub fn spawn(&self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Result<Child, CommandError> {
        self.command()
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| self.spawn_error(e))
    }

    /// The error for a process of this command that exited with `status`.
    pub fn failed(&self, status: ExitStatus, stderr: &[u8]) -> CommandError {
        let text = String::from_utf8_lossy(stderr);
        let text = text.trim();
        let start = text.len().saturating_sub(STDERR_KEPT);
        let start = (start..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        CommandError::Failed {
            command: self.to_string(),
            status,
            stderr: text[start..].to_string(),
        }
    }

    /// The error for an answer that breaks this command's protocol.
    pub fn protocol(&self, detail: impl Into<String>) -> CommandError {
        CommandError::Protocol {
            command: self.to_string(),
            detail: detail.into(),
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> CommandError {
        CommandError::Spawn {
            command: self.to_string(),
            source,
        }
    }
}

/// `git <args>`, as a user would type it (the fixed preamble left out, long argument lists
/// shortened).
impl fmt::Display for Git {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("git")?;
        for arg in self.args.iter().take(SHOWN_ARGS) {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
                write!(f, " {arg:?}")?;
            } else {
                write!(f, " {arg}")?;
            }
        }
        if self.args.len() > SHOWN_ARGS {
            write!(f, " … ({} more)", self.args.len() - SHOWN_ARGS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_the_command_line() {
        let git = Git::in_dir("/tmp").args(["annex", "metadata", "--key", "WORM--a b"]);
        assert_eq!(git.to_string(), r#"git annex metadata --key "WORM--a b""#);
        let long = Git::new().args((0..20).map(|i| i.to_string()));
        assert_eq!(long.to_string(), "git 0 1 2 3 4 5 6 7 8 9 10 11 … (8 more)");
    }

    #[test]
    fn failure_carries_status_and_stderr() {
        let err = Git::new()
            .args(["rev-parse", "--verify", "no-such-ref-anywhere"])
            .cwd(std::env::temp_dir())
            .stdout_bytes()
            .unwrap_err();
        assert!(err.status().is_some_and(|s| !s.success()), "{err}");
        assert!(err.to_string().starts_with("`git rev-parse"), "{err}");
        assert!(!err.reason().is_empty());
    }

    #[test]
    fn stdin_is_fed() {
        let out = Git::new()
            .args(["hash-object", "--stdin"])
            .stdin(b"x\n".to_vec())
            .stdout_text()
            .unwrap();
        assert_eq!(out.trim(), "587be6b4c3f93f93c489c0111bba5596147a26cb");
    }
}
