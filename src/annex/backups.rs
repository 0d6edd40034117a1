//! The repository side of Mixxx database backups: each backup is a new version of one annexed
//! file per machine (`Mixxx/<machine>/mixxxdb.sqlite` by default), committed on its own, so
//! the history of backups is git's history of that file and every old version's content stays
//! in the annex under its own key.
//!
//! The commit names only the backup's path (`git commit -- PATH`), so whatever else the user
//! has staged stays staged and out of it.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::annex::Repo;
use crate::annex::keys::{Entry, classify};
use crate::annex::repo::{Blob, CatFile};
use crate::error::{Error, Result};
use crate::model::AnnexKey;

/// The placeholder in `[paths] mixxx_backup_path` for this machine's name.
pub const MACHINE: &str = "{machine}";

/// Names longer than this are cut: a folder name, not an essay.
const MAX_MACHINE_LEN: usize = 64;

/// A pointer file or symlink target is small; anything larger is not an annexed file.
const MAX_POINTER: u64 = 32 * 1024;

/// This clone's name for backup paths: its git-annex description (`git annex describe`), else
/// the host name, else its uuid — made safe as one folder name.
pub fn machine_name(repo: &Repo) -> Result<String> {
    let described = crate::annex::state::description(repo, &repo.uuid)?
        .map(|d| sanitize(&d))
        .filter(|d| !d.is_empty());
    Ok(described
        .or_else(|| hostname().map(|h| sanitize(&h)).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| sanitize(&repo.uuid)))
}

/// Letters, digits, `.`, `_` and `-` stay; every run of anything else becomes one `-`; leading
/// and trailing `-` and `.` go (no `..`, no hidden folder), and the result is at most 64 bytes.
pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in name.chars() {
        if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    let mut out = out.trim_matches(['-', '.']).to_string();
    if out.len() > MAX_MACHINE_LEN {
        let mut end = MAX_MACHINE_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out = out.trim_end_matches(['-', '.']).to_string();
    }
    out
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // reports an error.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// `[paths] mixxx_backup_path`: a path inside the repository, with `{machine}` as at most one
/// whole folder or file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    components: Vec<String>,
    /// Which component is `{machine}`.
    machine: Option<usize>,
}

impl Pattern {
    pub fn parse(text: &str) -> std::result::Result<Pattern, String> {
        let components: Vec<String> = text
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(String::from)
            .collect();
        if text.starts_with('/') {
            return Err(format!(
                "{text:?} must be relative to the repository root (e.g. \"Mixxx/{{machine}}/mixxxdb.sqlite\")"
            ));
        }
        if components.is_empty() {
            return Err("the path is empty".into());
        }
        if components.iter().any(|c| c == "..") {
            return Err(format!("{text:?} leaves the repository (\"..\")"));
        }
        if components[0] == ".git" {
            return Err(format!("{text:?} is inside .git"));
        }
        let mut machine = None;
        for (i, c) in components.iter().enumerate() {
            if c.contains(MACHINE) {
                if c != MACHINE || machine.is_some() {
                    return Err(format!(
                        "{text:?}: {MACHINE} must be a whole folder or file name, used once"
                    ));
                }
                machine = Some(i);
            }
        }
        Ok(Pattern {
            components,
            machine,
        })
    }

    /// The repository path of `machine`'s backup file.
    pub fn path_for(&self, machine: &str) -> String {
        self.components
            .iter()
            .map(|c| if c == MACHINE { machine } else { c.as_str() })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// What `git log` looks at: the folder above `{machine}` (every machine's backups), or the
    /// one file when the path names no machine.
    pub fn scan_root(&self) -> String {
        match self.machine {
            Some(0) => ".".into(),
            Some(i) => self.components[..i].join("/"),
            None => self.components.join("/"),
        }
    }

    /// Whether `path` is a backup file of this pattern, and whose: the `{machine}` part, or
    /// `None` for a pattern without one (whose file is every machine's).
    pub fn machine_of(&self, path: &str) -> Option<Option<String>> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != self.components.len() {
            return None;
        }
        let mut machine = None;
        for (i, (part, want)) in parts.iter().zip(&self.components).enumerate() {
            if Some(i) == self.machine {
                machine = Some(part.to_string());
            } else if part != want {
                return None;
            }
        }
        Some(machine)
    }
}

/// The outcome of [`commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The commit holding this version (the earlier one when nothing changed).
    pub commit: String,
    pub key: Option<AnnexKey>,
    /// False when the snapshot was identical to the version already committed.
    pub new: bool,
}

fn git_error(context: &str) -> impl Fn(crate::annex::CommandError) -> Error + '_ {
    move |e| Error::git(context, e)
}

/// Annexes the file at `path` (a repository path, already written in the work tree) and
/// commits it alone with `message`. Nothing is committed when the content is the version
/// already committed.
pub fn commit(repo: &Repo, path: &str, message: &str) -> Result<Committed> {
    let context = format!("cannot commit the backup {path}");
    let err = git_error(&context);
    // The backup is always annexed, whatever annex.largefiles says: a database does not
    // belong in git's object store, and every version keeps its own key.
    repo.annex()
        .args(["add", "--force-large", "--quiet", "--", path])
        .stdout_bytes()
        .map_err(&err)?;
    let head = repo
        .git()
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .output()
        .map_err(&err)?;
    if head.status.success() {
        let diff = repo
            .git()
            .args(["diff", "--cached", "--quiet", "HEAD", "--", path])
            .output()
            .map_err(&err)?;
        match diff.status.code() {
            Some(0) => {
                let commit = repo
                    .git()
                    .args(["log", "-1", "--format=%H", "HEAD", "--", path])
                    .stdout_text()
                    .map_err(&err)?
                    .trim()
                    .to_string();
                let key = key_at(repo, &format!("{commit}:{path}"))?;
                return Ok(Committed {
                    commit,
                    key,
                    new: false,
                });
            }
            Some(1) => {}
            _ => {
                let git = repo.git().args(["diff", "--cached", "--quiet", "HEAD"]);
                return Err(err(git.failed(diff.status, &diff.stderr)));
            }
        }
    }
    // With a path, git commits only that path ("--only"): what else is staged stays staged.
    repo.git()
        .args(["commit", "--quiet", "-m", message, "--", path])
        .stdout_bytes()
        .map_err(&err)?;
    let commit = repo
        .git()
        .args(["rev-parse", "HEAD"])
        .stdout_text()
        .map_err(&err)?
        .trim()
        .to_string();
    let key = key_at(repo, &format!("{commit}:{path}"))?;
    Ok(Committed {
        commit,
        key,
        new: true,
    })
}

fn key_at(repo: &Repo, spec: &str) -> Result<Option<AnnexKey>> {
    let mut cat = CatFile::start(repo)?;
    let key = match cat.get(spec.as_bytes(), MAX_POINTER)? {
        Blob::Content(bytes) => match classify(&bytes) {
            Entry::Annexed(key) => Some(key),
            _ => None,
        },
        _ => None,
    };
    cat.finish()?;
    Ok(key)
}

/// One version of a backup file in the repository's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub commit: String,
    /// Committer time, Unix seconds.
    pub time: u64,
    pub path: String,
    /// Whose backup: the `{machine}` part of the path, or `None` (a path without it).
    pub machine: Option<String>,
    pub subject: String,
    /// The annex key; `None` for a version that is not an annexed file (added to git by hand).
    pub key: Option<AnnexKey>,
}

/// Every version of every backup file matching `pattern` in `HEAD`'s history, newest first.
pub fn versions(repo: &Repo, pattern: &Pattern) -> Result<Vec<Version>> {
    let context = "cannot read the backups' history";
    let head = repo
        .git()
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .output()
        .map_err(git_error(context))?;
    if !head.status.success() {
        return Ok(Vec::new());
    }
    let out = repo
        .git()
        .args([
            "log",
            "-z",
            "--no-renames",
            "--diff-filter=AM",
            "--name-only",
            "--format=%H%x01%ct%x01%s",
            "HEAD",
            "--",
        ])
        .arg(pattern.scan_root())
        .stdout_bytes()
        .map_err(git_error(context))?;
    let mut found = Vec::new();
    let mut header: Option<(String, u64, String)> = None;
    for token in out.split(|&b| b == 0) {
        let token = String::from_utf8_lossy(token);
        let token = token.strip_prefix('\n').unwrap_or(&token);
        if token.is_empty() {
            continue;
        }
        let parts: Vec<&str> = token.splitn(3, '\u{1}').collect();
        if let [commit, time, subject] = parts[..]
            && commit.len() >= 40
            && commit.bytes().all(|b| b.is_ascii_hexdigit())
        {
            header = Some((
                commit.to_string(),
                time.parse().unwrap_or(0),
                subject.to_string(),
            ));
            continue;
        }
        let Some((commit, time, subject)) = &header else {
            continue;
        };
        if let Some(machine) = pattern.machine_of(token) {
            found.push(Version {
                commit: commit.clone(),
                time: *time,
                path: token.to_string(),
                machine,
                subject: subject.clone(),
                key: None,
            });
        }
    }
    if !found.is_empty() {
        let specs: Vec<Vec<u8>> = found
            .iter()
            .map(|v| format!("{}:{}", v.commit, v.path).into_bytes())
            .collect();
        let mut cat = CatFile::start(repo)?;
        let blobs = cat.get_many(&specs, MAX_POINTER)?;
        cat.finish()?;
        for (version, blob) in found.iter_mut().zip(blobs) {
            if let Blob::Content(bytes) = blob
                && let Entry::Annexed(key) = classify(&bytes)
            {
                version.key = Some(key);
            }
        }
    }
    // git log lists newest first by commit order; ties in time keep that order.
    found.sort_by_key(|v| std::cmp::Reverse(v.time));
    Ok(found)
}

/// Where each key's content is in this clone (absolute), `None` where it is not present.
/// One `git annex contentlocation --batch` for all of them.
pub fn content_locations(
    repo: &Repo,
    keys: &[&AnnexKey],
) -> Result<Vec<Option<std::path::PathBuf>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut input = Vec::new();
    for key in keys {
        if key.as_str().contains('\n') {
            return Ok(keys.iter().map(|_| None).collect());
        }
        let _ = writeln!(input, "{}", key.as_str());
    }
    let git = repo.annex().args(["contentlocation", "--batch"]);
    let out = git
        .clone()
        .stdin(input)
        .stdout_text()
        .map_err(git_error("cannot look up the backups' content"))?;
    let lines: Vec<&str> = out.lines().collect();
    if lines.len() != keys.len() {
        return Err(Error::git(
            "cannot look up the backups' content",
            git.protocol(format!("{} answers for {} keys", lines.len(), keys.len())),
        ));
    }
    Ok(lines
        .into_iter()
        .map(|l| (!l.is_empty()).then(|| repo.root.join(l)))
        .collect())
}

/// Fetches `key`'s content from whichever remote has it (`git annex get --key`). The error
/// is git-annex's reason; the caller turns it into advice.
pub fn get(repo: &Repo, key: &AnnexKey) -> std::result::Result<(), crate::annex::CommandError> {
    let git = repo.annex().args(["get", "--key", key.as_str()]);
    let mut child = git.spawn(Stdio::null(), Stdio::null(), Stdio::piped())?;
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_end(&mut pipe, &mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| git.protocol(format!("cannot wait for git-annex: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(git.failed(status, &stderr))
    }
}

/// Whether `path` exists in the work tree as something other than a file or symlink (a
/// folder where the backup file should go).
pub fn blocked(root: &Path, path: &str) -> bool {
    std::fs::symlink_metadata(root.join(path)).is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_safe_folder_name() {
        assert_eq!(sanitize("root@host:/tmp/exp r"), "root-host-tmp-exp-r");
        assert_eq!(sanitize("desktop"), "desktop");
        assert_eq!(sanitize("../.."), "");
        assert_eq!(sanitize(" Studio PC (Köln) "), "Studio-PC-Köln");
        assert_eq!(sanitize(".hidden"), "hidden");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn patterns_place_and_find_the_machine() {
        let p = Pattern::parse("Mixxx/{machine}/mixxxdb.sqlite").unwrap();
        assert_eq!(p.path_for("desk"), "Mixxx/desk/mixxxdb.sqlite");
        assert_eq!(p.scan_root(), "Mixxx");
        assert_eq!(
            p.machine_of("Mixxx/lap/mixxxdb.sqlite"),
            Some(Some("lap".into()))
        );
        assert_eq!(p.machine_of("Mixxx/lap/other.sqlite"), None);
        assert_eq!(p.machine_of("Mixxx/a/b/mixxxdb.sqlite"), None);
        let fixed = Pattern::parse("./backups//mixxx.sqlite").unwrap();
        assert_eq!(fixed.path_for("x"), "backups/mixxx.sqlite");
        assert_eq!(fixed.scan_root(), "backups/mixxx.sqlite");
        assert_eq!(fixed.machine_of("backups/mixxx.sqlite"), Some(None));
        assert_eq!(
            Pattern::parse("{machine}.sqlite").map(|_| ()),
            Err(
                "\"{machine}.sqlite\": {machine} must be a whole folder or file name, used once"
                    .into()
            )
        );
        assert!(Pattern::parse("/abs/x.sqlite").is_err());
        assert!(Pattern::parse("a/../../x").is_err());
        assert!(Pattern::parse(".git/x").is_err());
        assert!(Pattern::parse("").is_err());
        assert_eq!(Pattern::parse("{machine}/db").unwrap().scan_root(), ".");
    }
}
