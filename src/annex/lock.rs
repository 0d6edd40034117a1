//! One writer per repository: a lock file in `<common dir>/music-commander/lock`.
//!
//! Two syncs that plan against the same metadata both write everything (issue 11), so a run
//! that writes takes this lock before it reads anything, and plans only once the run before
//! it has committed. Runs that only read (`status`, `sync --dry-run`) take no lock.
//!
//! The file names its holder: pid, the process start time (from `/proc/<pid>/stat`, where
//! there is one, so a reused pid is not mistaken for the holder), what it does and since when.
//! It appears complete or not at all: it is written to a temporary file and hard-linked into
//! place, which fails if a lock exists, as `O_EXCL` would. It is removed on drop, which the
//! Ctrl-C path reaches because the run finishes normally; a holder that was killed leaves a
//! stale file that the next run takes over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::annex::Repo;
use crate::error::{Error, Result};

/// How long a run waits for another to finish. Overridable through this variable, for tests
/// (it is not a user setting: a sync that waits longer than this is better told to retry).
const WAIT: Duration = Duration::from_secs(10);
const WAIT_ENV: &str = "MUSIC_COMMANDER_LOCK_WAIT_MS";
const POLL: Duration = Duration::from_millis(100);

/// Who holds (or held) the lock, as its file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Clock ticks since boot at which the process started, where the system tells.
    pub start_time: Option<u64>,
    /// What the holder does (`sync`).
    pub purpose: String,
    /// Unix seconds when it took the lock.
    pub since: u64,
}

impl Holder {
    fn me(purpose: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start_time: start_time(pid),
            purpose: purpose.to_string(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    fn encode(&self) -> String {
        format!(
            "pid={}\nstarttime={}\nholder={}\nsince={}\n",
            self.pid,
            self.start_time.map(|t| t.to_string()).unwrap_or_default(),
            self.purpose,
            self.since
        )
    }

    /// None for anything that is not a lock file this tool wrote.
    fn decode(text: &str) -> Option<Holder> {
        let mut pid = None;
        let mut start_time = None;
        let mut purpose = None;
        let mut since = None;
        for line in text.lines() {
            let (name, value) = line.split_once('=')?;
            match name {
                "pid" => pid = value.parse().ok(),
                "starttime" => start_time = value.parse().ok(),
                "holder" => purpose = Some(value.to_string()),
                "since" => since = value.parse().ok(),
                _ => {}
            }
        }
        Some(Holder {
            pid: pid.filter(|&p| p > 0)?,
            start_time,
            purpose: purpose?,
            since: since?,
        })
    }

    /// Whether the process that took the lock is still running.
    fn is_alive(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // Signal 0 checks existence; EPERM means it exists but belongs to another user.
        let exists = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !exists {
            return false;
        }
        // The pid may have been given to another process since.
        match (self.start_time, start_time(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = self.since % 86_400;
        write!(
            f,
            "another music-commander {} (pid {}, started {:02}:{:02}:{:02} UTC)",
            self.purpose,
            self.pid,
            day / 3600,
            day / 60 % 60,
            day % 60
        )
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name, which may contain
/// spaces and parentheses itself).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    /// The lock file and what we wrote into it; None where this user cannot create files in
    /// the repository's git directory: nothing run by this user can write there either, so
    /// there is nothing to guard, and a sync with nothing to write still works.
    file: Option<(PathBuf, String)>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let Some((path, content)) = &self.file else {
            return;
        };
        // Only our own file: never remove a lock another run holds.
        if std::fs::read_to_string(path).is_ok_and(|c| c == *content) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

pub fn path(repo: &Repo) -> PathBuf {
    repo.common_dir.join("music-commander").join("lock")
}

fn wait_limit() -> Duration {
    std::env::var(WAIT_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(WAIT)
}

/// Takes the repository's lock for `purpose`, waiting a bounded time for a live holder;
/// `waiting` is called once, with the holder, when the wait begins.
pub fn acquire(repo: &Repo, purpose: &str, waiting: &dyn Fn(&Holder)) -> Result<Lock> {
    let path = path(repo);
    let dir = path.parent().unwrap_or(Path::new("."));
    match std::fs::create_dir_all(dir) {
        Ok(()) => {}
        Err(e) if is_read_only(&e) => return Ok(Lock { file: None }),
        Err(e) => return Err(Error::io(format!("cannot create {}", dir.display()), e)),
    }
    let me = Holder::me(purpose).encode();
    let deadline = Instant::now() + wait_limit();
    let mut announced = false;
    loop {
        match try_create(&path, dir, &me) {
            Ok(true) => {
                return Ok(Lock {
                    file: Some((path, me)),
                });
            }
            Ok(false) => {}
            Err(e) if is_read_only(&e) => return Ok(Lock { file: None }),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot create the lock {}", path.display()),
                    e,
                ));
            }
        }
        let seen = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // Released between our attempt and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let holder = std::str::from_utf8(&seen).ok().and_then(Holder::decode);
        match holder {
            Some(holder) if holder.is_alive() => {
                if Instant::now() >= deadline {
                    return Err(Error::RepositoryLocked {
                        holder: holder.to_string(),
                        lock: path,
                    });
                }
                if !announced {
                    waiting(&holder);
                    announced = true;
                }
                std::thread::sleep(POLL);
            }
            // Its holder is gone (or it is no lock file of ours): take it over.
            _ => take_over(&path, &seen)?,
        }
    }
}

/// Creates the lock with `content` unless one exists; false when one does.
fn try_create(path: &Path, dir: &Path, content: &str) -> std::io::Result<bool> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(content.as_bytes())?;
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a stale lock whose content was `seen`. It is renamed aside first so that a lock
/// another run created in the meantime (after it took over the same stale lock) is noticed
/// and put back instead of deleted.
fn take_over(path: &Path, seen: &[u8]) -> Result<()> {
    let aside = path.with_file_name(format!("lock.stale.{}", std::process::id()));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::io(
                format!("cannot remove the stale lock {}", path.display()),
                e,
            ));
        }
    }
    if std::fs::read(&aside).is_ok_and(|moved| moved != seen) {
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_and_rejects_other_files() {
        let me = Holder::me("sync");
        assert_eq!(Holder::decode(&me.encode()), Some(me.clone()));
        assert!(me.is_alive());
        assert_eq!(Holder::decode(""), None);
        assert_eq!(Holder::decode("pid=0\nholder=sync\nsince=1\n"), None);
        assert_eq!(Holder::decode("garbage"), None);
        let reused = Holder {
            start_time: me.start_time.map(|t| t + 1),
            ..me
        };
        assert_eq!(reused.is_alive(), reused.start_time.is_none());
    }

    #[test]
    fn display_names_the_holder() {
        let holder = Holder {
            pid: 123,
            start_time: None,
            purpose: "sync".into(),
            // 2025-12-01 21:04:05 UTC
            since: 1_764_622_800 + 4 * 60 + 5,
        };
        assert_eq!(
            holder.to_string(),
            "another music-commander sync (pid 123, started 21:04:05 UTC)"
        );
    }
}
