//! Reading the Mixxx library database — strictly read-only.
//!
//! Mixxx keeps its database open and writes to it while it runs, so the reader opens the file
//! read-only (never creating a journal, never taking a write lock), waits a bounded time for a
//! busy database and reads everything inside one read transaction for a consistent snapshot.
//! The schema is probed column by column rather than trusted from the revision number: old
//! revisions lack columns, development builds add some, and both must read fine.

pub mod paths;
pub mod sample;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};

/// Index into [`Library::crate_names`]: tracks refer to crates by id so that memory grows with
/// the number of memberships, not with crate-name bytes × tracks.
pub type CrateId = u32;

/// What the reader learned about the database's schema.
#[derive(Clone, Debug)]
pub struct SchemaInfo {
    /// `settings.mixxx.schema.version`, if present and numeric.
    pub version: Option<u32>,
    pub has_source_synchronized_ms: bool,
    pub has_color: bool,
    pub has_key_id: bool,
}

/// One row of `library` joined with its `track_locations` row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Track {
    pub id: i64,
    /// `track_locations.location`, as raw bytes (SQLite text need not be UTF-8).
    pub location: Vec<u8>,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub year: Option<String>,
    pub tracknumber: Option<String>,
    pub comment: Option<String>,
    pub rating: Option<i64>,
    pub bpm: Option<f64>,
    /// 0xRRGGBB, `None` when NULL or the column does not exist (before rev 31).
    pub color: Option<i64>,
    pub key: Option<String>,
    pub key_id: Option<i64>,
    /// Sorted by crate name.
    pub crates: Vec<CrateId>,
    /// `library.mixxx_deleted = 1` (NULL counts as not deleted).
    pub mixxx_deleted: bool,
    /// `track_locations.fs_deleted = 1`.
    pub fs_deleted: bool,
}

/// All tracks of a database plus the crate-name table they refer to.
#[derive(Clone, Debug, Default)]
pub struct Library {
    pub tracks: Vec<Track>,
    pub crate_names: Vec<String>,
}

impl Library {
    pub fn crate_name(&self, id: CrateId) -> &str {
        &self.crate_names[id as usize]
    }
}

/// How long one attempt waits for Mixxx to release its lock.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts at an operation that finds the database busy. SQLite's busy handler is not
/// called in every locking situation (for instance while another connection recovers a hot
/// journal), so a busy error after the timeout gets one more try before we give up.
const BUSY_ATTEMPTS: u32 = 2;
const BUSY_PAUSE: Duration = Duration::from_millis(100);

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// An open, read-only Mixxx database.
pub struct MixxxDb {
    path: PathBuf,
    conn: Connection,
    busy_timeout: Duration,
    layout: Layout,
}

/// What the database's tables look like, probed once at open.
struct Layout {
    schema: SchemaInfo,
    library_columns: HashSet<String>,
    location_columns: HashSet<String>,
    /// Both `crates(id, name)` and `crate_tracks(crate_id, track_id)` exist.
    has_crates: bool,
}

// By hand because `Connection`'s Debug says nothing useful; this lets callers and tests
// `unwrap_err()` an open result.
impl std::fmt::Debug for MixxxDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixxxDb")
            .field("path", &self.path)
            .field("schema", &self.layout.schema)
            .finish_non_exhaustive()
    }
}

impl MixxxDb {
    /// Opens `path` read-only, with a bounded busy timeout, and checks it is a Mixxx database.
    pub fn open(path: &Path) -> Result<MixxxDb> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// Like [`MixxxDb::open`], waiting at most `busy_timeout` per attempt for a lock held by
    /// another process (there are two attempts per operation).
    pub fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<MixxxDb> {
        check_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        // The bundled SQLite enables foreign keys by default and Mixxx's schema declares
        // broken ones; `query_only` turns any accidental write into an error. Neither pragma
        // touches the file.
        conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA query_only = ON;")
            .and_then(|()| conn.busy_timeout(busy_timeout))
            .map_err(|e| classify(path, e))?;
        let layout = probe_layout(&conn, path, busy_timeout)?;
        Ok(MixxxDb {
            path: path.to_path_buf(),
            conn,
            busy_timeout,
            layout,
        })
    }

    pub fn schema(&self) -> &SchemaInfo {
        &self.layout.schema
    }

    /// Reads every track in one pass (tracks without a location row are skipped).
    ///
    /// Text columns come back as stored: `''` stays `Some("")`, distinct from NULL (`None`).
    pub fn read_library(&self) -> Result<Library> {
        with_retry(&self.path, self.busy_timeout, || {
            self.conn.execute_batch("BEGIN DEFERRED")?;
            let result = self.read_snapshot();
            // Ending a read transaction cannot lose anything; its error is not worth
            // reporting over the read's own result.
            let _ = self.conn.execute_batch("COMMIT");
            result
        })
    }

    fn read_snapshot(&self) -> rusqlite::Result<Library> {
        let mut tracks = self.read_tracks()?;
        let crate_names = if self.layout.has_crates {
            self.read_crates(&mut tracks)?
        } else {
            Vec::new()
        };
        Ok(Library {
            tracks,
            crate_names,
        })
    }

    fn read_tracks(&self) -> rusqlite::Result<Vec<Track>> {
        // Columns a revision lacks are selected as NULL, so one query shape serves all.
        let library = |name: &str| column_or_null("l", name, &self.layout.library_columns);
        let location = |name: &str| column_or_null("tl", name, &self.layout.location_columns);
        let sql = format!(
            "SELECT l.id, tl.location, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}
             FROM library AS l JOIN track_locations AS tl ON tl.id = l.location
             ORDER BY l.id",
            library("artist"),
            library("title"),
            library("album"),
            library("genre"),
            library("year"),
            library("tracknumber"),
            library("comment"),
            library("rating"),
            library("bpm"),
            library("color"),
            library("key"),
            library("key_id"),
            library("mixxx_deleted"),
            location("fs_deleted"),
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut tracks = Vec::new();
        while let Some(row) = rows.next()? {
            let value = |i: usize| row.get_ref(i);
            let (Some(id), Some(location)) = (decode::integer(value(0)?), decode::bytes(value(1)?))
            else {
                continue;
            };
            tracks.push(Track {
                id,
                location,
                artist: decode::text(value(2)?),
                title: decode::text(value(3)?),
                album: decode::text(value(4)?),
                genre: decode::text(value(5)?),
                year: decode::text(value(6)?),
                tracknumber: decode::text(value(7)?),
                comment: decode::text(value(8)?),
                rating: decode::integer(value(9)?),
                bpm: decode::real(value(10)?),
                color: decode::integer(value(11)?),
                key: decode::text(value(12)?),
                key_id: decode::integer(value(13)?),
                crates: Vec::new(),
                mixxx_deleted: decode::flag(value(14)?),
                fs_deleted: decode::flag(value(15)?),
            });
        }
        Ok(tracks)
    }

    /// Fills in each track's crates and returns the crate names, sorted, which the
    /// [`CrateId`]s index. Crates whose names decode to the same text are merged, since
    /// nothing downstream could tell them apart.
    fn read_crates(&self, tracks: &mut [Track]) -> rusqlite::Result<Vec<String>> {
        let mut crates: Vec<(String, i64)> = Vec::new();
        let mut stmt = self.conn.prepare("SELECT id, name FROM crates")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if let (Some(id), Some(name)) = (
                decode::integer(row.get_ref(0)?),
                decode::text(row.get_ref(1)?),
            ) {
                crates.push((name, id));
            }
        }
        crates.sort();
        let mut names: Vec<String> = Vec::new();
        let mut crate_ids: HashMap<i64, CrateId> = HashMap::with_capacity(crates.len());
        for (name, db_id) in crates {
            if names.last() != Some(&name) {
                names.push(name);
            }
            crate_ids.insert(db_id, (names.len() - 1) as CrateId);
        }

        let track_index: HashMap<i64, usize> =
            tracks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let mut stmt = self
            .conn
            .prepare("SELECT crate_id, track_id FROM crate_tracks")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let crate_id = decode::integer(row.get_ref(0)?).and_then(|id| crate_ids.get(&id));
            let track = decode::integer(row.get_ref(1)?).and_then(|id| track_index.get(&id));
            if let (Some(&crate_id), Some(&track)) = (crate_id, track) {
                tracks[track].crates.push(crate_id);
            }
        }
        // Ids were assigned in name order, so sorting ids sorts by name.
        for track in tracks.iter_mut() {
            track.crates.sort_unstable();
            track.crates.dedup();
        }
        Ok(names)
    }
}

/// Probes the tables a sync needs; refuses databases that lack the essential ones.
fn probe_layout(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<Layout> {
    let (library, locations, crates, crate_tracks, version) =
        with_retry(path, busy_timeout, || {
            let settings = columns(conn, "settings")?;
            let version = if settings.contains("name") && settings.contains("value") {
                schema_version(conn)?
            } else {
                None
            };
            Ok((
                columns(conn, "library")?,
                columns(conn, "track_locations")?,
                columns(conn, "crates")?,
                columns(conn, "crate_tracks")?,
                version,
            ))
        })?;
    for (table, columns) in [("library", &library), ("track_locations", &locations)] {
        let reason = if columns.is_empty() {
            format!("no `{table}` table")
        } else if let Some(missing) = ["id", "location"].iter().find(|c| !columns.contains(**c)) {
            format!("`{table}` has no `{missing}` column")
        } else {
            continue;
        };
        return Err(Error::MixxxDbNotMixxx {
            path: path.to_path_buf(),
            reason,
        });
    }
    Ok(Layout {
        schema: SchemaInfo {
            version,
            has_source_synchronized_ms: library.contains("source_synchronized_ms"),
            has_color: library.contains("color"),
            has_key_id: library.contains("key_id"),
        },
        has_crates: crates.contains("id")
            && crates.contains("name")
            && crate_tracks.contains("crate_id")
            && crate_tracks.contains("track_id"),
        library_columns: library,
        location_columns: locations,
    })
}

/// Lower-cased column names of `table`; empty when the table does not exist.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| {
        Ok(decode::text(row.get_ref(0)?)
            .unwrap_or_default()
            .to_lowercase())
    })?;
    names.collect()
}

fn schema_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let mut stmt =
        conn.prepare("SELECT value FROM settings WHERE name = 'mixxx.schema.version'")?;
    let mut rows = stmt.query([])?;
    Ok(match rows.next()? {
        Some(row) => decode::integer(row.get_ref(0)?).and_then(|v| u32::try_from(v).ok()),
        None => None,
    })
}

/// Runs `op`, retrying a bounded number of times while the database is busy.
fn with_retry<T>(
    path: &Path,
    busy_timeout: Duration,
    mut op: impl FnMut() -> rusqlite::Result<T>,
) -> Result<T> {
    let mut attempt = 1;
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if is_busy(&e) && attempt < BUSY_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(BUSY_PAUSE.min(busy_timeout));
            }
            Err(e) => return Err(classify(path, e)),
        }
    }
}

/// `alias.name` when the column exists, else `NULL`. Names come from our own fixed list,
/// never from the database, so quoting them is enough.
fn column_or_null(alias: &str, name: &str, columns: &HashSet<String>) -> String {
    if columns.contains(name) {
        format!("{alias}.\"{name}\"")
    } else {
        "NULL".to_owned()
    }
}

/// Rejects what SQLite would misreport: it opens an empty file as an empty database and
/// only notices a text file on the first query, and it cannot tell "missing" from
/// "permission denied" as clearly as the OS can.
fn check_file(path: &Path) -> Result<()> {
    let io_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MixxxDbMissing {
            path: path.to_path_buf(),
        },
        _ => Error::MixxxDbUnreadable {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
    };
    let not_mixxx = |reason: &str| Error::MixxxDbNotMixxx {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if metadata.is_dir() {
        return Err(not_mixxx("it is a directory"));
    }
    // Reading the header of a FIFO or device could block or never end.
    if !metadata.is_file() {
        return Err(not_mixxx("not a regular file"));
    }
    if metadata.len() == 0 {
        return Err(not_mixxx("the file is empty"));
    }
    let mut header = Vec::with_capacity(SQLITE_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(SQLITE_MAGIC.len() as u64)
                .read_to_end(&mut header)
        })
        .map_err(io_error)?;
    if header != SQLITE_MAGIC {
        return Err(not_mixxx("not an SQLite database"));
    }
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Maps an SQLite error to the error the user can act on.
fn classify(path: &Path, e: rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    let Some(code) = e.sqlite_error_code() else {
        return Error::MixxxDbUnreadable {
            path,
            detail: e.to_string(),
        };
    };
    let detail = match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            return Error::MixxxDbLocked { path };
        }
        ErrorCode::NotADatabase => {
            return Error::MixxxDbNotMixxx {
                path,
                reason: "file is not a database".to_owned(),
            };
        }
        ErrorCode::DatabaseCorrupt => "the database is corrupted (malformed disk image)".to_owned(),
        // A read-only connection cannot roll back a hot journal or recover a WAL that a
        // crashed writer left behind; SQLite reports this as a read-only error.
        ErrorCode::ReadOnly => format!(
            "{e}: an interrupted write needs recovery; start and quit Mixxx once, then retry"
        ),
        ErrorCode::PermissionDenied | ErrorCode::CannotOpen => {
            format!("{e} (check the file's and its folder's permissions)")
        }
        _ => e.to_string(),
    };
    Error::MixxxDbUnreadable { path, detail }
}

// Lenient decoding of SQLite values. SQLite stores whatever it is given: a text column may
// hold bytes that are not UTF-8 or (without text affinity) a number, a numeric column may
// hold text. One odd value must never fail the whole read, so each decoder returns `None`
// for what it cannot interpret.
mod decode {
    use rusqlite::types::ValueRef;

    /// Text as the user would see it; numbers are rendered, invalid UTF-8 is replaced.
    pub(super) fn text(value: ValueRef<'_>) -> Option<String> {
        match value {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            // Display prints 2024.0 as "2024", as a user typing the year meant it.
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// The exact stored bytes (paths need not be UTF-8).
    pub(super) fn bytes(value: ValueRef<'_>) -> Option<Vec<u8>> {
        match value {
            ValueRef::Null => None,
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
            other => text(other).map(String::into_bytes),
        }
    }

    /// An integer; reals are truncated, text is parsed (`" 4 "`, `"4.0"`), anything else is
    /// `None`.
    pub(super) fn integer(value: ValueRef<'_>) -> Option<i64> {
        match value {
            ValueRef::Integer(i) => Some(i),
            // `as` saturates, so huge values cannot panic.
            ValueRef::Real(f) if f.is_finite() => Some(f as i64),
            ValueRef::Text(b) | ValueRef::Blob(b) => {
                let s = std::str::from_utf8(b).ok()?.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| integer(ValueRef::Real(s.parse().ok()?)))
            }
            _ => None,
        }
    }

    /// A finite real; text is parsed, NaN and infinities are `None`.
    pub(super) fn real(value: ValueRef<'_>) -> Option<f64> {
        let f = match value {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(b) | ValueRef::Blob(b) => {
                std::str::from_utf8(b).ok()?.trim().parse().ok()?
            }
            ValueRef::Null => return None,
        };
        f.is_finite().then_some(f)
    }

    /// A 0/1 flag; NULL and anything unreadable count as false.
    pub(super) fn flag(value: ValueRef<'_>) -> bool {
        integer(value).is_some_and(|i| i != 0)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn text_accepts_every_storage_class() {
            assert_eq!(text(ValueRef::Null), None);
            assert_eq!(text(ValueRef::Integer(2024)).as_deref(), Some("2024"));
            assert_eq!(text(ValueRef::Real(2024.0)).as_deref(), Some("2024"));
            assert_eq!(text(ValueRef::Real(120.5)).as_deref(), Some("120.5"));
            assert_eq!(text(ValueRef::Text(b"")).as_deref(), Some(""));
            assert_eq!(
                text(ValueRef::Text(b"a\xffb")).as_deref(),
                Some("a\u{fffd}b")
            );
            assert_eq!(text(ValueRef::Blob(b"x")).as_deref(), Some("x"));
        }

        #[test]
        fn bytes_keep_invalid_utf8() {
            assert_eq!(bytes(ValueRef::Text(b"/a\xff")), Some(b"/a\xff".to_vec()));
            assert_eq!(bytes(ValueRef::Integer(5)), Some(b"5".to_vec()));
            assert_eq!(bytes(ValueRef::Null), None);
        }

        #[test]
        fn numbers_from_anything() {
            assert_eq!(integer(ValueRef::Text(b" 4 ")), Some(4));
            assert_eq!(integer(ValueRef::Text(b"4.9")), Some(4));
            assert_eq!(integer(ValueRef::Text(b"four")), None);
            assert_eq!(integer(ValueRef::Text(b"\xff")), None);
            assert_eq!(integer(ValueRef::Text(b"nan")), None);
            assert_eq!(integer(ValueRef::Real(f64::NAN)), None);
            assert_eq!(integer(ValueRef::Real(1e300)), Some(i64::MAX));
            assert_eq!(real(ValueRef::Text(b"128.5")), Some(128.5));
            assert_eq!(real(ValueRef::Text(b"inf")), None);
            assert_eq!(real(ValueRef::Integer(128)), Some(128.0));
            assert_eq!(real(ValueRef::Blob(b"")), None);
            assert!(flag(ValueRef::Text(b"1")));
            assert!(!flag(ValueRef::Null));
            assert!(!flag(ValueRef::Integer(0)));
        }
    }
}
