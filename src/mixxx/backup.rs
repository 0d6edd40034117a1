//! Consistent copies of the Mixxx database, and the local backups taken before every write.
//!
//! Copies go through SQLite's online backup API: it copies a consistent snapshot page by page
//! and starts over when another connection (a running Mixxx) writes meanwhile, so a backup
//! works while Mixxx runs, and a copy never holds half a transaction, which copying the file's
//! bytes could.
//!
//! A restore ([`restore_into`]) writes a backup back over the database: into the live file
//! through the same API when SQLite can read it (one transaction, so a crash leaves the old
//! database), else as a new file renamed over the broken one.
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

/// Where `backup` keeps the database in the repository unless the config says otherwise;
/// `{machine}` is this clone's name (see `annex::backups::machine_name`).
pub const DEFAULT_REPO_PATH: &str = "Mixxx/{machine}/mixxxdb.sqlite";

/// Pages copied per step: small enough that a running Mixxx is not blocked for long.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// Copies the database at `db` to `dest` (which must not exist yet) as one consistent
/// snapshot. The copy is written beside `dest` and renamed into place, so `dest` is either
/// absent or complete.
pub fn snapshot(db: &Path, dest: &Path) -> Result<()> {
    copy_consistently(db, dest, false)
}

/// [`snapshot`], replacing `dest` if it exists (atomically: the rename replaces the name, never
/// the old file's bytes, so a hard-linked old copy — an annexed file — keeps its content).
pub fn snapshot_over(db: &Path, dest: &Path) -> Result<()> {
    copy_consistently(db, dest, true)
}

fn copy_consistently(db: &Path, dest: &Path, replace: bool) -> Result<()> {
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
    if replace {
        partial
            .persist(dest)
            .map_err(|e| backup_io(dest, e.error))?;
    } else {
        partial
            .persist_noclobber(dest)
            .map_err(|e| backup_io(dest, e.error))?;
    }
    Ok(())
}

/// Why a database did not pass [`check_integrity`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unhealthy {
    /// Another connection holds a lock that keeps readers out (a writer committing): the
    /// file may be fine, and must not be treated as broken.
    Locked,
    /// SQLite cannot read it whole: what it said.
    Damaged(String),
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::Locked => f.write_str("the database is locked"),
            Unhealthy::Damaged(detail) => f.write_str(detail),
        }
    }
}

/// `Ok` when SQLite reads the whole database at `path` and `PRAGMA integrity_check` says
/// `ok`. Opens it read-only and waits up to 2 s for a lock.
pub fn check_integrity(path: &Path) -> std::result::Result<(), Unhealthy> {
    let classify = |e: rusqlite::Error| {
        if is_busy(&e) {
            Unhealthy::Locked
        } else {
            Unhealthy::Damaged(e.to_string())
        }
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(classify)?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(classify)?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        [] => Err(Unhealthy::Damaged("integrity_check gave no answer".into())),
        _ => Err(Unhealthy::Damaged(problems.join("; "))),
    }
}

/// How [`restore_into`] wrote the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Through SQLite into the live file, in one transaction.
    InPlace,
    /// As a new file renamed over a missing or unreadable one.
    Replaced,
}

/// The files SQLite keeps beside a database: a journal left there belongs to that database,
/// and SQLite would roll it back into whatever file next has the database's name.
fn companions(db: &Path) -> [PathBuf; 3] {
    ["-journal", "-wal", "-shm"].map(|suffix| {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// Writes the backup at `source` over the database at `db`, then checks the result with
/// `PRAGMA integrity_check`. A database SQLite can read is overwritten in place through the
/// backup API (one write transaction: other connections wait, a crash rolls back); a missing
/// or unreadable one (`healthy` false) is replaced by a complete copy renamed over it, its
/// journal files removed (they belong to the broken file; the caller has copied them away).
/// The caller checked the source and that no Mixxx runs.
pub fn restore_into(source: &Path, db: &Path, healthy: bool) -> Result<Restored> {
    let failed = |detail: String| Error::MixxxDbUnreadable {
        path: db.to_path_buf(),
        detail,
    };
    let how = if healthy {
        let src = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| failed(format!("cannot open the backup {}: {e}", source.display())))?;
        let mut live = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| failed(e.to_string()))?;
        live.busy_timeout(Duration::from_secs(10))
            .map_err(|e| failed(e.to_string()))?;
        let backup =
            rusqlite::backup::Backup::new(&src, &mut live).map_err(|e| failed(e.to_string()))?;
        // All pages in one step: the destination is written in one transaction.
        loop {
            match backup.step(-1) {
                Ok(rusqlite::backup::StepResult::Done) => break,
                Ok(rusqlite::backup::StepResult::More) => continue,
                Ok(_) => {
                    return Err(Error::MixxxDbLocked {
                        path: db.to_path_buf(),
                    });
                }
                Err(e) if is_busy(&e) => {
                    return Err(Error::MixxxDbLocked {
                        path: db.to_path_buf(),
                    });
                }
                Err(e) => return Err(failed(e.to_string())),
            }
        }
        Restored::InPlace
    } else {
        for companion in companions(db) {
            match std::fs::remove_file(&companion) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(backup_io(&companion, e)),
            }
        }
        let mode = std::fs::metadata(db).ok().map(|m| m.permissions());
        snapshot_over(source, db)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = mode.unwrap_or_else(|| std::fs::Permissions::from_mode(0o644));
        std::fs::set_permissions(db, mode).map_err(|e| backup_io(db, e))?;
        Restored::Replaced
    };
    check_integrity(db).map_err(|e| match e {
        Unhealthy::Locked => Error::MixxxDbLocked {
            path: db.to_path_buf(),
        },
        Unhealthy::Damaged(e) => failed(format!("after the restore: {e}")),
    })?;
    Ok(how)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn backup_io(path: &Path, source: std::io::Error) -> Error {
    Error::io_about(
        IoSubject::Arguments,
        format!("cannot write the backup {}", path.display()),
        source,
    )
}

/// The end of a byte copy's reason ([`LocalBackups::take_bytes`]): SQLite could not read what
/// it copied, so it is kept for inspection, not offered as the newest backup to restore.
pub const UNREADABLE: &str = "_unreadable";

/// One local backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBackup {
    pub path: PathBuf,
    /// When it was taken, RFC 3339 UTC (from its name).
    pub time: String,
    /// Why: `import`, `restore`, … (from its name).
    pub reason: String,
}

impl LocalBackup {
    /// A byte copy of a database SQLite could not read.
    pub fn is_byte_copy(&self) -> bool {
        self.reason.ends_with(UNREADABLE)
    }
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
        self.take_with(db, reason, keep, snapshot)
    }

    fn take_with(
        &self,
        db: &Path,
        reason: &str,
        keep: usize,
        copy: impl FnOnce(&Path, &Path) -> Result<()>,
    ) -> Result<LocalBackup> {
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
        copy(db, &path)?;
        let taken = LocalBackup { path, time, reason };
        self.prune(keep.max(1), &taken.path)?;
        Ok(taken)
    }

    /// A byte-for-byte copy of `db` (and of a journal beside it), for a database SQLite
    /// cannot read: a snapshot needs a readable database, and a damaged one is still worth
    /// keeping as it was. Pruned like [`LocalBackups::take`].
    /// Its reason ends with [`UNREADABLE`], so it is never mistaken for a restorable one.
    pub fn take_bytes(&self, db: &Path, reason: &str, keep: usize) -> Result<LocalBackup> {
        let reason = format!("{reason}{UNREADABLE}");
        self.take_with(db, &reason, keep, |db, dest| {
            std::fs::create_dir_all(&self.dir).map_err(|e| backup_io(&self.dir, e))?;
            std::fs::copy(db, dest).map_err(|e| backup_io(dest, e))?;
            for (companion, suffix) in companions(db).iter().zip(["-journal", "-wal", "-shm"]) {
                if companion.exists() {
                    let mut to = dest.as_os_str().to_os_string();
                    to.push(suffix);
                    std::fs::copy(companion, &to).map_err(|e| backup_io(Path::new(&to), e))?;
                }
            }
            Ok(())
        })
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
            // The journal copies of a byte copy go with it.
            for companion in companions(&old.path) {
                let _ = std::fs::remove_file(companion);
            }
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
    fn restore_writes_in_place_or_replaces_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with(dir.path(), 4);
        let saved = dir.path().join("saved.sqlite");
        snapshot(&db, &saved).unwrap();
        Connection::open(&db)
            .unwrap()
            .execute("DELETE FROM t", [])
            .unwrap();
        assert_eq!(restore_into(&saved, &db, true).unwrap(), Restored::InPlace);
        assert_eq!(rows(&db), 4);

        std::fs::write(&db, b"not a database at all, just bytes").unwrap();
        let journal = companions(&db)[0].clone();
        std::fs::write(&journal, b"a stale journal").unwrap();
        assert!(check_integrity(&db).is_err());
        let backups = LocalBackups::new(&dir.path().join("git"), &db);
        let kept = backups.take_bytes(&db, "restore", 2).unwrap();
        assert_eq!(
            std::fs::read(&kept.path).unwrap(),
            b"not a database at all, just bytes"
        );
        assert!(
            companions(&kept.path)[0].exists(),
            "the journal is kept too"
        );
        assert_eq!(
            restore_into(&saved, &db, false).unwrap(),
            Restored::Replaced
        );
        assert!(!journal.exists(), "the broken file's journal is gone");
        assert_eq!(rows(&db), 4);
        assert_eq!(check_integrity(&db), Ok(()));
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
