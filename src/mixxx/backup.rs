//! Consistent copies of the Mixxx database, and the local backups taken before every write.
//!
//! Copies go through SQLite's online backup API: it copies a consistent snapshot page by page
//! and starts over when another connection (a running Mixxx) writes meanwhile, so a backup
//! works while Mixxx runs, and a copy never holds half a transaction, which copying the file's
//! bytes could.
//!
//! Local backups live in this clone's `.git/music-commander/mixxx-backups/<hash of the DB
//! path>/`, one file per backup named `<UTC time>-<n>-<reason>.sqlite`, so they are this machine's,
//! never shared, sorted by name = by time, and pruned to the newest N.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, IoSubject, Result};

/// Local backups kept per Mixxx database when the config says nothing.
pub const DEFAULT_KEEP: usize = 5;

/// Pages copied per step: small enough that a running Mixxx is not blocked for long.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// Copies the database at `db` to `dest` (which must not exist yet) as one consistent
/// snapshot. The copy is written beside `dest` and renamed into place, so `dest` is either
/// absent or complete.
pub fn snapshot(db: &Path, dest: &Path) -> Result<()> {
    let unreadable = |e: rusqlite::Error| Error::MixxxDbUnreadable {
        path: db.to_path_buf(),
        detail: e.to_string(),
    };
    let source = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unreadable)?;
    source
        .busy_timeout(Duration::from_secs(10))
        .map_err(unreadable)?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| backup_io(dir, e))?;
    let partial = tempfile::Builder::new()
        .prefix(".partial-")
        .suffix(".sqlite")
        .tempfile_in(dir)
        .map_err(|e| backup_io(dir, e))?;
    {
        let mut target = Connection::open(partial.path()).map_err(unreadable)?;
        let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(unreadable)?;
        backup
            .run_to_completion(PAGES_PER_STEP, Duration::from_millis(5), None)
            .map_err(unreadable)?;
    }
    partial
        .persist_noclobber(dest)
        .map_err(|e| backup_io(dest, e.error))?;
    Ok(())
}

fn backup_io(path: &Path, source: std::io::Error) -> Error {
    Error::io_about(
        IoSubject::Arguments,
        format!("cannot write the backup {}", path.display()),
        source,
    )
}

/// One local backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBackup {
    pub path: PathBuf,
    /// When it was taken, RFC 3339 UTC (from its name).
    pub time: String,
    /// Why: `import`, `restore`, … (from its name).
    pub reason: String,
}

/// The local backups of one Mixxx database in one clone.
#[derive(Clone, Debug)]
pub struct LocalBackups {
    dir: PathBuf,
}

impl LocalBackups {
    /// The backups of the database at `mixxx_db`, kept in the clone whose git common
    /// directory is `common_dir`.
    pub fn new(common_dir: &Path, mixxx_db: &Path) -> LocalBackups {
        let canonical = std::fs::canonicalize(mixxx_db).unwrap_or_else(|_| mixxx_db.to_path_buf());
        let hash = crate::annex::cache::checksum(canonical.as_os_str().as_encoded_bytes());
        LocalBackups {
            dir: common_dir
                .join("music-commander")
                .join("mixxx-backups")
                .join(format!("{hash:016x}")),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Backs up `db` now, then deletes all but the newest `keep` backups (never the new one).
    pub fn take(&self, db: &Path, reason: &str, keep: usize) -> Result<LocalBackup> {
        let time = crate::annex::state::now_rfc3339();
        let stamp: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
        let reason: String = reason
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Backups within one second (a script, a test) are numbered, so names still sort
        // by time and none clobbers another.
        let name = |n: u32| self.dir.join(format!("{stamp}-{n:03}-{reason}.sqlite"));
        let mut n = 1;
        while name(n).exists() {
            n += 1;
        }
        let path = name(n);
        snapshot(db, &path)?;
        let taken = LocalBackup { path, time, reason };
        self.prune(keep.max(1), &taken.path)?;
        Ok(taken)
    }

    /// Every local backup, newest first.
    pub fn list(&self) -> Result<Vec<LocalBackup>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(backup_io(&self.dir, e)),
        };
        let mut backups: Vec<LocalBackup> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?.strip_suffix(".sqlite")?;
                let (stamp, rest) = name.split_once('-')?;
                let (seq, reason) = rest.split_once('-')?;
                seq.parse::<u32>().ok()?;
                Some(LocalBackup {
                    time: rfc3339_from_stamp(stamp)?,
                    reason: reason.to_string(),
                    path,
                })
            })
            .collect();
        backups.sort_by(|a, b| b.path.cmp(&a.path));
        Ok(backups)
    }

    fn prune(&self, keep: usize, newest: &Path) -> Result<()> {
        for old in self
            .list()?
            .into_iter()
            .filter(|b| b.path != newest)
            .skip(keep - 1)
        {
            std::fs::remove_file(&old.path).map_err(|e| backup_io(&old.path, e))?;
        }
        Ok(())
    }
}

/// `20261202T001500Z` → `2026-12-02T00:15:00Z`; `None` for anything else (a foreign file).
fn rfc3339_from_stamp(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    let shape = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    shape.then(|| {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(dir: &Path, rows: i64) -> PathBuf {
        let path = dir.join("mixxxdb.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
        for i in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        path
    }

    fn rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_snapshot_holds_the_committed_rows_and_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with(dir.path(), 3);
        let dest = dir.path().join("out/copy.sqlite");
        snapshot(&db, &dest).unwrap();
        assert_eq!(rows(&dest), 3);
        assert!(snapshot(&db, &dest).is_err(), "an existing file is kept");
        assert_eq!(rows(&dest), 3);
    }

    #[test]
    fn local_backups_are_listed_newest_first_and_pruned_to_keep() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with(dir.path(), 1);
        let backups = LocalBackups::new(&dir.path().join("git"), &db);
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.push(backups.take(&db, "import", 3).unwrap());
        }
        let listed = backups.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0], taken[3]);
        assert!(!taken[0].path.exists());
        assert!(listed.iter().all(|b| b.reason == "import"));
        assert_eq!(
            listed[1..],
            taken[1..3].iter().rev().cloned().collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn foreign_files_in_the_folder_are_not_backups() {
        assert_eq!(rfc3339_from_stamp("notes"), None);
        assert_eq!(
            rfc3339_from_stamp("20261202T001500Z").as_deref(),
            Some("2026-12-02T00:15:00Z")
        );
    }
}
