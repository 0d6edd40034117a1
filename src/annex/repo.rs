//! A git-annex repository on disk: discovery (work tree, git dir, this clone's uuid), the
//! version check, and the long-running `git cat-file --batch` reader shared by the key map and
//! the snapshot. Invariant: a `Repo` always names a non-bare, git-annex-initialized work tree.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use crate::annex::git::Git;
use crate::error::{Error, Result};

/// The minimum git-annex version: Debian stable's.
pub const MIN_ANNEX_VERSION: &str = "10.20230126";

/// A checked git-annex repository with a work tree.
#[derive(Clone, Debug)]
pub struct Repo {
    /// Absolute, canonical work-tree root.
    pub root: PathBuf,
    /// Absolute git directory (`.git`, or what a `.git` file points to).
    pub git_dir: PathBuf,
    /// The directory shared by all linked work trees (`git rev-parse --git-common-dir`); equal
    /// to `git_dir` except in a `git worktree add` checkout. git-annex keeps its state
    /// (journal, objects) here.
    pub common_dir: PathBuf,
    /// This clone's git-annex UUID (`annex.uuid`).
    pub uuid: String,
    /// `git annex version --raw`.
    pub annex_version: String,
    /// `annex.genmetadata`: git-annex sets `year`, `month` and `day` from file dates on `git
    /// annex add`, so a managed field named `year` writes over git-annex's own.
    pub genmetadata: bool,
}

impl Repo {
    /// Finds the work tree containing `start` and checks git-annex is installed (≥ MIN),
    /// and the repository is annex-initialized. Errors: NotGitRepo, BareRepo, AnnexMissing,
    /// AnnexTooOld, NotAnnexRepo.
    pub fn discover(start: &Path) -> Result<Repo> {
        // One rev-parse answers "is it git, is it bare, where is everything". `--show-toplevel`
        // goes last: it is the one that fails in a bare repository or inside `.git`, and git
        // still prints the answers before it.
        // `--repo some/file.mp3` means the repository holding that file.
        let dir = match start.parent() {
            Some(parent) if start.is_file() => parent,
            _ => start,
        };
        let rev_parse = Git::new().arg("-C").arg(dir).args([
            "rev-parse",
            "--is-bare-repository",
            "--absolute-git-dir",
            "--path-format=absolute",
            "--git-common-dir",
            "--show-toplevel",
        ]);
        let out = rev_parse
            .output()
            .map_err(|e| Error::git("cannot run git", e))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let (Some(bare), Some(git_dir), Some(common_dir)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::NotGitRepo {
                path: start.to_path_buf(),
            });
        };
        if bare == "true" {
            return Err(Error::BareRepo {
                path: PathBuf::from(git_dir),
            });
        }
        let Some(toplevel) = lines.next().filter(|_| out.status.success()) else {
            return Err(Error::git(
                format!("cannot find the work tree of {}", start.display()),
                rev_parse.protocol(
                    "the path is inside the .git directory; point at the work tree instead",
                ),
            ));
        };
        let root = std::fs::canonicalize(toplevel)
            .map_err(|e| Error::io(format!("cannot resolve {toplevel}"), e))?;
        let mut repo = Repo {
            root,
            git_dir: PathBuf::from(git_dir),
            common_dir: PathBuf::from(common_dir),
            uuid: String::new(),
            annex_version: String::new(),
            genmetadata: false,
        };

        let out = repo
            .annex()
            .args(["version", "--raw"])
            .output()
            .map_err(|e| Error::git("cannot run git", e))?;
        if !out.status.success() {
            return Err(Error::AnnexMissing);
        }
        repo.annex_version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if version_less(&repo.annex_version, MIN_ANNEX_VERSION) {
            return Err(Error::AnnexTooOld {
                found: repo.annex_version,
                needed: MIN_ANNEX_VERSION.into(),
            });
        }

        // `git config` exits 1 when no key matches: that is the "not initialized" answer,
        // not a failure. One process for both keys: every sync pays for it.
        let out = repo
            .git()
            .args(["config", "--get-regexp", r"^annex\.(uuid|genmetadata)$"])
            .output()
            .map_err(|e| Error::git("cannot run git", e))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, "true"));
            match key {
                "annex.uuid" => repo.uuid = value.trim().to_string(),
                "annex.genmetadata" => repo.genmetadata = git_bool(value.trim()),
                _ => {}
            }
        }
        if repo.uuid.is_empty() {
            return Err(Error::NotAnnexRepo { path: repo.root });
        }
        Ok(repo)
    }

    /// `git` at the work-tree root.
    pub fn git(&self) -> Git {
        Git::in_dir(&self.root)
    }

    /// `git annex` at the work-tree root.
    pub fn annex(&self) -> Git {
        self.git().arg("annex")
    }

    /// `git <args>`, returning stdout; a failed exit is an error carrying stderr.
    pub(crate) fn git_output(&self, args: &[&str]) -> Result<Vec<u8>> {
        self.git().args(args).stdout_bytes().map_err(|e| {
            Error::git(
                format!("cannot read the repository {}", self.root.display()),
                e,
            )
        })
    }
}

/// git's boolean spelling: `true`, `yes`, `on` or a non-zero number, in any case.
fn git_bool(value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    matches!(value.as_str(), "true" | "yes" | "on") || value.parse::<i64>().is_ok_and(|n| n != 0)
}

/// Compares git-annex version strings numerically, component by component
/// (`8.20210223` < `10.20230126`); anything after the numeric prefix (`-1~ndall`) is ignored.
pub fn version_less(found: &str, needed: &str) -> bool {
    fn parts(v: &str) -> Vec<u64> {
        let numeric = v
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap_or("");
        numeric
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap_or(u64::MAX))
            .collect()
    }
    let (mut a, mut b) = (parts(found), parts(needed));
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a < b
}

/// One object's answer from `git cat-file --batch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Blob {
    Missing,
    Content(Vec<u8>),
    /// Larger than the caller's limit; its content was skipped.
    TooLarge,
}

/// A running `git cat-file --batch`, shared by the key map and the metadata snapshot so each
/// needs one process for any number of objects.
pub(crate) struct CatFile {
    command: Git,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    pub(crate) fn start(repo: &Repo) -> Result<CatFile> {
        let command = repo.git().args(["cat-file", "--batch"]);
        let mut child = command
            .spawn(Stdio::piped(), Stdio::piped(), Stdio::inherit())
            .map_err(|e| Error::git("cannot read the repository", e))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(CatFile {
            command,
            child,
            stdin,
            stdout,
        })
    }

    /// Asks for one object and waits for the answer: for lookups that decide what to ask next.
    pub(crate) fn get(&mut self, spec: &[u8], limit: u64) -> Result<Blob> {
        self.check_spec(spec)?;
        let stdin = self.stdin.as_mut().expect("cat-file stdin open");
        stdin
            .write_all(spec)
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io("write to git cat-file", e))?;
        read_answer(&mut self.stdout, limit).map_err(|e| self.broken(e))
    }

    /// Asks for many objects, in order. A writer thread feeds the requests while this thread
    /// reads the answers: writing everything first would deadlock once both pipes are full.
    pub(crate) fn get_many(&mut self, specs: &[Vec<u8>], limit: u64) -> Result<Vec<Blob>> {
        for spec in specs {
            self.check_spec(spec)?;
        }
        let command = &self.command;
        let stdin = self.stdin.as_mut().expect("cat-file stdin open");
        let stdout = &mut self.stdout;
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> std::io::Result<()> {
                let mut w = std::io::BufWriter::new(stdin);
                for spec in specs {
                    w.write_all(spec)?;
                    w.write_all(b"\n")?;
                }
                w.flush()
            });
            let answers: Result<Vec<Blob>> = specs
                .iter()
                .map(|_| read_answer(stdout, limit).map_err(|e| broken(command, e)))
                .collect();
            let written = writer.join().expect("cat-file writer thread panicked");
            let answers = answers?;
            written.map_err(|e| Error::io("write to git cat-file", e))?;
            Ok(answers)
        })
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("wait for git cat-file", e))?;
        if !status.success() {
            return Err(Error::git(
                "cannot read the repository",
                self.command.failed(status, b""),
            ));
        }
        Ok(())
    }

    fn check_spec(&self, spec: &[u8]) -> Result<()> {
        if spec.contains(&b'\n') {
            return Err(Error::git(
                "cannot read the repository",
                self.command.protocol(format!(
                    "object name contains a newline: {:?}",
                    std::ffi::OsStr::from_bytes(spec)
                )),
            ));
        }
        Ok(())
    }

    fn broken(&self, e: Broken) -> Error {
        broken(&self.command, e)
    }
}

/// How an answer of `git cat-file --batch` went wrong.
enum Broken {
    Io(std::io::Error),
    Protocol(&'static str),
}

fn broken(command: &Git, e: Broken) -> Error {
    match e {
        Broken::Io(e) => Error::io("read from git cat-file", e),
        Broken::Protocol(detail) => {
            Error::git("cannot read the repository", command.protocol(detail))
        }
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        // Closing stdin makes cat-file exit; reap it so no zombie outlives an error path.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn read_answer(r: &mut impl BufRead, limit: u64) -> Result<Blob, Broken> {
    let broken = Broken::Io;
    let mut header = Vec::new();
    r.read_until(b'\n', &mut header).map_err(broken)?;
    if header.pop() != Some(b'\n') {
        return Err(Broken::Protocol("ended early"));
    }
    // `<oid> <type> <size>` when found, `<name> missing|ambiguous` otherwise; the name may
    // contain spaces, so only the last word is trustworthy.
    let last = header.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    let Some(size) = std::str::from_utf8(last)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Ok(Blob::Missing);
    };
    let blob = if size > limit {
        std::io::copy(&mut r.take(size), &mut std::io::sink()).map_err(broken)?;
        Blob::TooLarge
    } else {
        let mut data = Vec::with_capacity(size as usize);
        r.take(size).read_to_end(&mut data).map_err(broken)?;
        if data.len() as u64 != size {
            return Err(Broken::Protocol("ended inside an object"));
        }
        Blob::Content(data)
    };
    let mut nl = [0u8; 1];
    r.read_exact(&mut nl).map_err(broken)?;
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_less("8.20210223", "10.20230126"));
        assert!(!version_less("10.20230126", "10.20230126"));
        assert!(!version_less("10.20240129-1~ndall", "10.20230126"));
        assert!(version_less("10.20221212", "10.20230126"));
        assert!(!version_less("10.20230126.1", "10.20230126"));
        assert!(!version_less("11", "10.20230126"));
        assert!(version_less("", "10.20230126"));
    }
}
