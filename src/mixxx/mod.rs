//! Reading the Mixxx library database — strictly read-only.
//!
//! Mixxx keeps its database open and writes to it while it runs, so the reader opens the file
//! read-only (never creating a journal, never taking a write lock), waits a bounded time for a
//! busy database and reads everything inside one read transaction for a consistent snapshot.
//! The schema is probed column by column rather than trusted from the revision number: old
//! revisions lack columns, development builds add some, and both must read fine.

pub mod backup;
pub mod cues;
pub mod paths;
pub mod running;
pub mod sample;
mod wal;
pub mod write;

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

/// How a column's values are decoded (leniently: see `decode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Integer,
    Real,
    /// The exact stored bytes (a `BLOB`, or text taken as its bytes): the `beats` grid.
    Blob,
}

/// A column of Mixxx's `library` table, as the field table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Lower-case, as the schema probe folds names.
    pub name: &'static str,
    pub kind: ColumnKind,
}

impl Column {
    pub const fn text(name: &'static str) -> Column {
        Column {
            name,
            kind: ColumnKind::Text,
        }
    }

    pub const fn integer(name: &'static str) -> Column {
        Column {
            name,
            kind: ColumnKind::Integer,
        }
    }

    pub const fn real(name: &'static str) -> Column {
        Column {
            name,
            kind: ColumnKind::Real,
        }
    }

    pub const fn blob(name: &'static str) -> Column {
        Column {
            name,
            kind: ColumnKind::Blob,
        }
    }
}

/// What to read besides each track's id, location and deletion flags: the reader knows no
/// field, the sync's field table says which columns it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `library` columns; a column listed twice is read once.
    pub columns: Vec<Column>,
    /// Crate memberships (`crates`, `crate_tracks`).
    pub crates: bool,
    /// The `cues` table.
    pub cues: bool,
}

/// One decoded value, borrowed from a [`Library`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Raw<'a> {
    /// NULL, unreadable as the column's kind, or a column this database lacks.
    Null,
    Text(&'a str),
    Integer(i64),
    Real(f64),
    Blob(&'a [u8]),
}

impl<'a> Raw<'a> {
    pub fn as_text(self) -> Option<&'a str> {
        match self {
            Raw::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(self) -> Option<i64> {
        match self {
            Raw::Integer(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_real(self) -> Option<f64> {
        match self {
            Raw::Real(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_blob(self) -> Option<&'a [u8]> {
        match self {
            Raw::Blob(b) => Some(b),
            _ => None,
        }
    }
}

/// A value to store in a column: what a field's inverse codec produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Integer(i64),
    Real(f64),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_raw(&self) -> Raw<'_> {
        match self {
            Value::Null => Raw::Null,
            Value::Text(s) => Raw::Text(s),
            Value::Integer(i) => Raw::Integer(*i),
            Value::Real(f) => Raw::Real(*f),
            Value::Blob(b) => Raw::Blob(b),
        }
    }
}

/// A stored value in 8 bytes, read by its column's kind: text and blobs as start and length in
/// the library's text and byte buffers (`Library::text`, `Library::bytes`), numbers as
/// themselves. 100,000 tracks × a dozen columns as boxed strings cost an allocation each,
/// which with its bookkeeping was a fifth of a no-op sync's peak memory; as a 16-byte enum
/// they were still 19 MB.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cell(u64);

impl Cell {
    /// `None` for NULL, or a value unreadable as the column's kind.
    fn decode(
        kind: ColumnKind,
        value: rusqlite::types::ValueRef<'_>,
        text: &mut String,
        bytes: &mut Vec<u8>,
    ) -> Option<Cell> {
        match kind {
            ColumnKind::Text => match value {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    Cell::text(text, &String::from_utf8_lossy(b))
                }
                other => decode::text(other).and_then(|t| Cell::text(text, &t)),
            },
            ColumnKind::Integer => decode::integer(value).map(|i| Cell(i as u64)),
            ColumnKind::Real => decode::real(value).map(|f| Cell(f.to_bits())),
            ColumnKind::Blob => match value {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    Cell::blob(bytes, b)
                }
                // A number is no blob Mixxx wrote: unreadable, like text in an integer column.
                _ => None,
            },
        }
    }

    /// `value`, appended to `text`.
    fn text(text: &mut String, value: &str) -> Option<Cell> {
        // Past 4 GiB of text: no Mixxx library comes near; unreadable rather than wrong.
        let cell = Cell::span(text.len(), value.len())?;
        text.push_str(value);
        Some(cell)
    }

    /// `value`, appended to `bytes`.
    fn blob(bytes: &mut Vec<u8>, value: &[u8]) -> Option<Cell> {
        let cell = Cell::span(bytes.len(), value.len())?;
        bytes.extend_from_slice(value);
        Some(cell)
    }

    fn span(start: usize, len: usize) -> Option<Cell> {
        let (start, len) = (u32::try_from(start).ok()?, u32::try_from(len).ok()?);
        start.checked_add(len)?;
        Some(Cell(u64::from(start) << 32 | u64::from(len)))
    }

    fn range(self) -> std::ops::Range<usize> {
        let (start, len) = ((self.0 >> 32) as usize, (self.0 & 0xffff_ffff) as usize);
        start..start + len
    }

    fn as_raw<'a>(self, kind: ColumnKind, text: &'a str, bytes: &'a [u8]) -> Raw<'a> {
        match kind {
            ColumnKind::Text => Raw::Text(&text[self.range()]),
            ColumnKind::Integer => Raw::Integer(self.0 as i64),
            ColumnKind::Real => Raw::Real(f64::from_bits(self.0)),
            ColumnKind::Blob => Raw::Blob(&bytes[self.range()]),
        }
    }
}

/// Every track's cells, row-major, and which of them are NULL (a bit each).
#[derive(Clone, Debug, Default)]
struct Cells {
    values: Vec<Cell>,
    nulls: Vec<u64>,
}

impl Cells {
    fn with_capacity(n: usize) -> Cells {
        Cells {
            values: Vec::with_capacity(n),
            nulls: Vec::with_capacity(n.div_ceil(64)),
        }
    }

    fn push(&mut self, cell: Option<Cell>) {
        let i = self.values.len();
        if i.is_multiple_of(64) {
            self.nulls.push(0);
        }
        if cell.is_none() {
            self.nulls[i / 64] |= 1 << (i % 64);
        }
        self.values.push(cell.unwrap_or(Cell(0)));
    }

    fn get(&self, i: usize) -> Option<Cell> {
        (self.nulls[i / 64] & (1 << (i % 64)) == 0).then(|| self.values[i])
    }

    fn shrink_to_fit(&mut self) {
        self.values.shrink_to_fit();
        self.nulls.shrink_to_fit();
    }
}

/// One row of `library` joined with its `track_locations` row. The requested columns' values
/// are in the [`Library`] ([`Library::value`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Track {
    pub id: i64,
    /// `track_locations.location`, as raw bytes (SQLite text need not be UTF-8).
    pub location: Vec<u8>,
    /// Sorted by crate name.
    pub crates: Vec<CrateId>,
    /// `library.mixxx_deleted = 1` (NULL counts as not deleted).
    pub mixxx_deleted: bool,
    /// `track_locations.fs_deleted = 1`.
    pub fs_deleted: bool,
}

/// All tracks of a database, the requested columns' values, and the crate-name table the
/// tracks refer to.
#[derive(Clone, Debug, Default)]
pub struct Library {
    pub tracks: Vec<Track>,
    pub crate_names: Vec<String>,
    /// The requested columns this database has, in the order of each row's cells.
    columns: Vec<Column>,
    /// Row-major: `columns.len()` cells per track.
    cells: Cells,
    /// Every text cell's bytes, one after the other.
    text: String,
    /// Every blob cell's bytes, one after the other (empty unless a blob column was asked
    /// for: the beat grid is read only when it is managed).
    bytes: Vec<u8>,
    /// Requested columns this database does not have (an older Mixxx).
    pub missing_columns: Vec<&'static str>,
    /// Requested columns that hold values but not one this reader could decode (text in an
    /// integer column, for every track): that says nothing about what the tracks have.
    pub undecodable_columns: Vec<&'static str>,
    /// Whether crate memberships were read (asked for, and the tables exist).
    pub has_crates: bool,
    /// The travelling cue rows, sorted by track index ([`Library::cues`]).
    pub cue_rows: Vec<cues::CueRow>,
    /// Whether cues were read (asked for, and the table exists).
    pub has_cues: bool,
}

impl Library {
    pub fn crate_name(&self, id: CrateId) -> &str {
        &self.crate_names[id as usize]
    }

    /// The cue rows of the track at index `track`.
    pub fn cues(&self, track: usize) -> &[cues::CueRow] {
        let track = track as u32;
        let start = self.cue_rows.partition_point(|r| r.track < track);
        let len = self.cue_rows[start..].partition_point(|r| r.track == track);
        &self.cue_rows[start..start + len]
    }

    /// A checksum of everything this library holds for the track at `track` but its id and
    /// location: its cells, its crates' names and its cue rows. The fields a sync wants for
    /// a track are made from these alone, so a track whose digest did not change wants what
    /// it wanted (the quiet stamp's comparison, `sync::quiet::Tracks`). `scratch` is reused
    /// between calls.
    pub fn digest(&self, track: usize, scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        let mut put = |tag: u8, bytes: &[u8]| {
            scratch.push(tag);
            scratch.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            scratch.extend_from_slice(bytes);
        };
        for position in 0..self.columns.len() {
            match self.value(track, Some(position)) {
                Raw::Null => put(0, &[]),
                Raw::Text(t) => put(1, t.as_bytes()),
                Raw::Integer(i) => put(2, &i.to_le_bytes()),
                Raw::Real(f) => put(3, &f.to_bits().to_le_bytes()),
                Raw::Blob(b) => put(4, b),
            }
        }
        for &id in &self.tracks[track].crates {
            put(5, self.crate_name(id).as_bytes());
        }
        for cue in self.cues(track) {
            let numbers = [
                cue.id,
                cue.kind,
                cue.position.to_bits() as i64,
                cue.length.to_bits() as i64,
                cue.hotcue,
                cue.color.unwrap_or(0),
                i64::from(cue.color.is_some()),
            ];
            for n in numbers {
                put(6, &n.to_le_bytes());
            }
            put(7, cue.label.as_bytes());
        }
        crate::fingerprint::checksum(scratch)
    }

    /// Where column `name` is in each row, if it was read: resolve once, then use
    /// [`Library::value`] per track.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The value of the column at `position` for the track at `track` (an index into
    /// `tracks`); `Null` for a column that was not read.
    pub fn value(&self, track: usize, position: Option<usize>) -> Raw<'_> {
        match position {
            Some(p) => match self.cells.get(track * self.columns.len() + p) {
                Some(cell) => cell.as_raw(self.columns[p].kind, &self.text, &self.bytes),
                None => Raw::Null,
            },
            None => Raw::Null,
        }
    }

    /// A library built in memory, column by column (`values[i]` for `tracks[i]`): for tests
    /// of what consumes a library.
    pub fn from_values(
        tracks: Vec<Track>,
        crate_names: Vec<String>,
        columns: Vec<(Column, Vec<Value>)>,
    ) -> Library {
        let mut cells = Cells::with_capacity(tracks.len() * columns.len());
        let mut text = String::new();
        let mut bytes = Vec::new();
        for t in 0..tracks.len() {
            for (column, values) in &columns {
                // As the database reader decodes what it finds in a column of this kind.
                let value = match &values[t] {
                    Value::Null => rusqlite::types::ValueRef::Null,
                    Value::Text(s) => rusqlite::types::ValueRef::Text(s.as_bytes()),
                    Value::Integer(i) => rusqlite::types::ValueRef::Integer(*i),
                    Value::Real(f) => rusqlite::types::ValueRef::Real(*f),
                    Value::Blob(b) => rusqlite::types::ValueRef::Blob(b),
                };
                cells.push(Cell::decode(column.kind, value, &mut text, &mut bytes));
            }
        }
        Library {
            tracks,
            crate_names,
            columns: columns.into_iter().map(|(c, _)| c).collect(),
            cells,
            text,
            bytes,
            missing_columns: Vec::new(),
            undecodable_columns: Vec::new(),
            has_crates: true,
            cue_rows: Vec::new(),
            has_cues: true,
        }
    }

    /// The value of column `name` for track `track`: for tests and one-off lookups.
    pub fn get(&self, track: usize, name: &str) -> Raw<'_> {
        self.value(track, self.position(name))
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

/// Bytes that change whenever the database's content can have changed: the file's identity,
/// size and modification time, the SQLite header's change counter (bumped by every commit in
/// rollback-journal mode, the mode Mixxx uses), and the same for a `-wal` file (where WAL
/// commits go until a checkpoint). Read before the library, so a write during the read shows
/// as a change next time. Equal markers are taken as an unchanged database; where that is
/// wrong (a file rewritten in place with its old size, counter and time restored), the only
/// cost is a sync base that moves one run later.
pub fn change_marker(path: &Path) -> Vec<u8> {
    let mut out = crate::fingerprint::file(path);
    out.extend_from_slice(&crate::fingerprint::file(&wal::wal_file(path)));
    let mut header = [0u8; 100];
    if std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
    {
        // 24..28: file change counter; 92..96: the version-valid-for number.
        out.extend_from_slice(&header[24..28]);
        out.extend_from_slice(&header[92..96]);
    }
    // In WAL mode the wal-index header counts every commit (`iChange`, `mxFrame`), even one
    // that rewrites a reset `-wal` file in place with its old size within one clock tick.
    let mut shm = std::ffi::OsString::from(path.as_os_str());
    shm.push("-shm");
    let mut index = [0u8; 48];
    if std::fs::File::open(shm)
        .and_then(|mut f| f.read_exact(&mut index))
        .is_ok()
    {
        out.extend_from_slice(&index);
    }
    out
}

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
    /// `cues` has the columns a cue needs.
    cues: Option<cues::CueColumns>,
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
        match Self::connect(path, busy_timeout, false) {
            Err(Error::MixxxDbUnreadable { .. }) if wal::may_read_immutable(path) => {
                Self::connect(path, busy_timeout, true)
            }
            result => result,
        }
    }

    /// `immutable`: read the file as it is, without locks or `-shm` (see [`wal`]).
    fn connect(path: &Path, busy_timeout: Duration, immutable: bool) -> Result<MixxxDb> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable {
            Connection::open_with_flags(
                wal::immutable_uri(path),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        } else {
            Connection::open_with_flags(path, flags)
        }
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

    /// Reads every track and the columns `request` names in one pass (tracks without a
    /// location row are skipped).
    ///
    /// Text columns come back as stored: `''` stays `Text("")`, distinct from NULL.
    pub fn read_library(&self, request: &Request) -> Result<Library> {
        with_retry(&self.path, self.busy_timeout, || {
            self.conn.execute_batch("BEGIN DEFERRED")?;
            let result = self.read_snapshot(request);
            // Ending a read transaction cannot lose anything; its error is not worth
            // reporting over the read's own result.
            let _ = self.conn.execute_batch("COMMIT");
            result
        })
    }

    /// Ids of the tracks where any of `columns` holds data (not NULL, not empty): which
    /// tracks have an analysis (`beats`/`beats_version`, `keys`/`keys_version`). Columns this
    /// database lacks count as empty. Names come from our own code, never from the database.
    pub fn tracks_with_data(&self, columns: &[&str]) -> Result<HashSet<i64>> {
        let present: Vec<&&str> = columns
            .iter()
            .filter(|c| self.layout.library_columns.contains(**c))
            .collect();
        if present.is_empty() {
            return Ok(HashSet::new());
        }
        let condition = present
            .iter()
            .map(|c| format!("length(\"{c}\") > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        with_retry(&self.path, self.busy_timeout, || {
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT id FROM library WHERE {condition}"))?;
            let ids = stmt.query_map([], |row| row.get::<_, i64>(0))?;
            ids.collect()
        })
    }

    fn read_snapshot(&self, request: &Request) -> rusqlite::Result<Library> {
        let mut columns: Vec<Column> = Vec::with_capacity(request.columns.len());
        let mut missing_columns = Vec::new();
        for column in &request.columns {
            if columns.iter().any(|c| c.name == column.name)
                || missing_columns.contains(&column.name)
            {
                continue;
            }
            if self.layout.library_columns.contains(column.name) {
                columns.push(*column);
            } else {
                missing_columns.push(column.name);
            }
        }
        let (mut tracks, (cells, text, bytes), undecodable_columns) = self.read_tracks(&columns)?;
        let has_crates = request.crates && self.layout.has_crates;
        let crate_names = if has_crates {
            self.read_crates(&mut tracks)?
        } else {
            Vec::new()
        };
        let cue_layout = self.layout.cues.filter(|_| request.cues);
        let cue_rows = match cue_layout {
            Some(layout) if !tracks.is_empty() => {
                let index: HashMap<i64, usize> =
                    tracks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
                cues::read(&self.conn, layout, &index)?
            }
            _ => Vec::new(),
        };
        Ok(Library {
            tracks,
            crate_names,
            columns,
            cells,
            text,
            bytes,
            missing_columns,
            undecodable_columns,
            has_crates,
            cue_rows,
            has_cues: cue_layout.is_some(),
        })
    }

    /// The tracks, row-major the cells of `columns` (all of which exist), and the columns
    /// with values of which none decoded.
    #[allow(clippy::type_complexity)]
    fn read_tracks(
        &self,
        columns: &[Column],
    ) -> rusqlite::Result<(Vec<Track>, (Cells, String, Vec<u8>), Vec<&'static str>)> {
        // Flags a revision lacks are selected as NULL, so one query shape serves all.
        let flag = |alias, name: &str, have: &HashSet<String>| column_or_null(alias, name, have);
        let mut sql = format!(
            "SELECT l.id, tl.location, {}, {}",
            flag("l", "mixxx_deleted", &self.layout.library_columns),
            flag("tl", "fs_deleted", &self.layout.location_columns),
        );
        for column in columns {
            // Names come from the field table, never from the database: quoting is enough.
            sql.push_str(&format!(", l.\"{}\"", column.name));
        }
        sql.push_str(
            " FROM library AS l JOIN track_locations AS tl ON tl.id = l.location ORDER BY l.id",
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut tracks = Vec::new();
        let mut cells = Cells::default();
        let mut text = String::new();
        let mut bytes = Vec::new();
        // Per column: values that decoded, values that were there but did not.
        let mut decoded = vec![(0usize, 0usize); columns.len()];
        while let Some(row) = rows.next()? {
            let value = |i: usize| row.get_ref(i);
            let (Some(id), Some(location)) = (decode::integer(value(0)?), decode::bytes(value(1)?))
            else {
                continue;
            };
            tracks.push(Track {
                id,
                location,
                crates: Vec::new(),
                mixxx_deleted: decode::flag(value(2)?),
                fs_deleted: decode::flag(value(3)?),
            });
            for (i, column) in columns.iter().enumerate() {
                let raw = value(4 + i)?;
                let cell = Cell::decode(column.kind, raw, &mut text, &mut bytes);
                match (&cell, raw) {
                    (_, rusqlite::types::ValueRef::Null) => {}
                    (None, _) => decoded[i].1 += 1,
                    _ => decoded[i].0 += 1,
                }
                cells.push(cell);
            }
        }
        tracks.shrink_to_fit();
        cells.shrink_to_fit();
        text.shrink_to_fit();
        bytes.shrink_to_fit();
        let undecodable = columns
            .iter()
            .zip(&decoded)
            .filter(|(_, (ok, failed))| *ok == 0 && *failed > 0)
            .map(|(c, _)| c.name)
            .collect();
        Ok((tracks, (cells, text, bytes), undecodable))
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
    let (library, locations, crates, crate_tracks, version, cues) =
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
                cues::CueColumns::probe(conn)?,
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
        cues,
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
        ErrorCode::ReadOnly => wal::read_only_detail(&path).unwrap_or_else(|| {
            format!(
                "{e}: an interrupted write needs recovery; start and quit Mixxx once, then retry"
            )
        }),
        ErrorCode::PermissionDenied | ErrorCode::CannotOpen => wal::read_only_detail(&path)
            .unwrap_or_else(|| format!("{e} (check the file's and its folder's permissions)")),
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
