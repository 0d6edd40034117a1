//! A sample git-annex repository: `music-commander demo` builds one, and the tests build
//! theirs on it (crates/testutils), so both commit with the same identity.

use std::ffi::OsStr;
use std::path::Path;

use crate::annex::Git;
use crate::error::{Error, Result};

/// `git <args>` in `dir` with a fixed identity, so commits work without a user config.
pub fn command<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Git {
    Git::in_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "music-commander")
        .env("GIT_AUTHOR_EMAIL", "mc@example.invalid")
        .env("GIT_COMMITTER_NAME", "music-commander")
        .env("GIT_COMMITTER_EMAIL", "mc@example.invalid")
}

/// Runs `git` with arguments that need not be UTF-8 (file names, values), returning raw stdout.
pub fn git_bytes<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Vec<u8>> {
    command(dir, args)
        .stdout_bytes()
        .map_err(|e| Error::git("fixture", e))
}

/// Runs `git` in `dir` and returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_bytes(dir, args).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// `git init` + identity + `git annex init` in `dir` (created if missing).
pub fn init(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["config", "user.name", "music-commander"])?;
    git(dir, &["config", "user.email", "mc@example.invalid"])?;
    git(dir, &["annex", "init", "-q", "fixture"])?;
    Ok(())
}

/// Writes each `(relative path, content)` into the work tree, annexes all of them with one
/// `git annex add`, and commits.
pub fn add_files(dir: &Path, files: &[(&Path, &[u8])]) -> Result<()> {
    for (rel, content) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    }
    git(dir, &["annex", "add", "-q", "--force-large", "."])?;
    git(dir, &["commit", "-q", "-m", "add music"])?;
    Ok(())
}
