//! git-annex repositories for the tests and the benchmark: the product's sample repository
//! plus what only tests need (stdin-fed git calls, absent content in bulk).

use std::ffi::OsStr;
use std::path::Path;

use music_commander::annex::metalog;
pub use music_commander::annex::sample::{add_files, command, git, git_bytes, init};
use music_commander::{Error, Result};

/// Runs `git <args>` feeding `input` on stdin from a writer thread (so a chatty `--batch`
/// process cannot deadlock us) and returns stdout. Used to apply many metadata changes with
/// one git-annex start.
pub fn git_with_input<S: AsRef<OsStr>>(dir: &Path, args: &[S], input: &[u8]) -> Result<Vec<u8>> {
    command(dir, args)
        .stdin(input)
        .stdout_bytes()
        .map_err(|e| Error::git("fixture", e))
}

/// Commits symlinks to made-up keys (content absent), as `git annex add` + `drop` would leave
/// them, in a fraction of the time: `(path, key)` pairs, one `git add` + one commit.
pub fn add_absent_files(dir: &Path, files: &[(&Path, &str)]) -> Result<()> {
    for (rel, key) in files {
        let path = dir.join(rel);
        let parent = path.parent().expect("file path has a parent");
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        let depth = rel.components().count() - 1;
        let key_file = metalog::key_file(key);
        let target = format!(
            "{}.git/annex/objects/Xx/Yy/{key_file}/{key_file}",
            "../".repeat(depth)
        );
        std::os::unix::fs::symlink(&target, &path)
            .map_err(|e| Error::io(format!("symlink {}", path.display()), e))?;
    }
    let mut args: Vec<&OsStr> = vec![OsStr::new("add"), OsStr::new("--")];
    args.extend(files.iter().map(|(rel, _)| rel.as_os_str()));
    git_bytes(dir, &args)?;
    git(dir, &["commit", "-q", "-m", "add absent music"])?;
    Ok(())
}
