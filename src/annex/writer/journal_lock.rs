//! git-annex's journal lock, `annex/journal.lck`: every git-annex process takes it (an
//! exclusive POSIX `fcntl` lock on the whole file, `Annex/Journal.hs` `lockJournal`) before it
//! writes a journal file, stages the journal, merges into its branch index or commits the
//! git-annex branch. Holding it, we are the only writer of the journal, the branch index and
//! (among git-annex processes) the branch.
//!
//! On Linux the lock is an open-file-description lock (`F_OFD_SETLK`): it conflicts with
//! git-annex's classic record locks like one of them would, and also with another holder
//! in this process (classic locks do not exclude threads of one process).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Held until dropped (closing the file releases the lock).
pub(super) struct JournalLock {
    _file: File,
}

#[cfg(target_os = "linux")]
const SETLK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(not(target_os = "linux"))]
const SETLK: libc::c_int = libc::F_SETLK;

/// Outcome of waiting for the lock.
pub(super) enum Locked {
    Held(JournalLock),
    Cancelled,
}

impl JournalLock {
    /// Waits for the lock (polling, so a cancel is noticed); creates the file as git-annex
    /// does when it is missing.
    pub(super) fn acquire(path: &Path, cancel: &AtomicBool) -> std::io::Result<Locked> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        loop {
            // SAFETY: `flock` is plain data; zeroed is a valid value, then filled in.
            let mut lock: libc::flock = unsafe { std::mem::zeroed() };
            lock.l_type = libc::F_WRLCK as _;
            lock.l_whence = libc::SEEK_SET as _;
            lock.l_start = 0;
            lock.l_len = 0;
            // SAFETY: a valid descriptor and a valid `flock` for the duration of the call.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), SETLK, &lock) };
            if rc == 0 {
                return Ok(Locked::Held(JournalLock { _file: file }));
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) | Some(libc::EINTR) => {}
                _ => return Err(err),
            }
            if cancel.load(Ordering::Relaxed) {
                return Ok(Locked::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_a_second_holder_in_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("annex/journal.lck");
        let never = AtomicBool::new(false);
        let first = match JournalLock::acquire(&path, &never).unwrap() {
            Locked::Held(l) => l,
            Locked::Cancelled => panic!("cancelled"),
        };
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            JournalLock::acquire(&path, &cancel).unwrap(),
            Locked::Cancelled
        ));
        drop(first);
        // Released, but not always at once: a process another test forks in between holds a
        // copy of the descriptor (and so of the lock) until it execs, which closes it.
        let held = (0..500).any(|_| {
            let got = matches!(
                JournalLock::acquire(&path, &cancel).unwrap(),
                Locked::Held(_)
            );
            if !got {
                std::thread::sleep(Duration::from_millis(10));
            }
            got
        });
        assert!(held, "the lock was not released within 5 s of its drop");
    }
}
