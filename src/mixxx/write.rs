//! Writing the Mixxx database. Besides `restore` (which replaces the file from a backup),
//! this is the only code that opens it writable, and it does so under these rules:
//!
//! - never while Mixxx runs: Mixxx writes whole cached `library` rows back when a track leaves
//!   its cache and at shutdown, which would undo what we wrote ([`super::running`]);
//! - a consistent local backup first ([`super::backup`]), taken while this writer already
//!   holds the write lock, so it is exactly the state the transaction starts from;
//! - one transaction, `BEGIN IMMEDIATE` with a busy timeout (a locked database is
//!   [`Error::MixxxDbLocked`]); `PRAGMA integrity_check` before `COMMIT`, rolled back unless
//!   it says `ok`, so a SIGKILL or a failure leaves the database as before or fully written;
//! - the journal mode is never changed, foreign keys are never enforced (the bundled SQLite
//!   enables them by default and Mixxx's schema declares some wrongly);
//! - only the named `library` columns, `crates` (new ones only), `crate_tracks` and the named
//!   slots' `cues` rows change; a column this database lacks (an older schema) is not
//!   written; crates are never deleted; a cue row that is updated keeps its id.
//!
//! It knows no field: the caller says which cells get which values and which memberships
//! come and go, by crate name in the caller's spelling (`crate_key` maps a stored crate name
//! to it).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use super::backup::{LocalBackup, LocalBackups};
use super::{Value, check_file, classify, columns, is_busy, running};
use crate::error::{Error, Result};

/// One `library` cell to set.
#[derive(Clone, Debug, PartialEq)]
pub struct CellEdit {
    /// `library.id`.
    pub track: i64,
    /// A column name from the field table (never from the database).
    pub column: &'static str,
    pub value: Value,
}

/// A crate membership to add or remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrateEdit {
    pub track: i64,
    /// The crate's name as the caller spells it (what `crate_key` makes of a stored name).
    pub name: String,
    /// `true`: the track joins the crate (created if no crate has this name); `false`: it
    /// leaves every crate of this name.
    pub member: bool,
}

/// Which `cues` row of a track an edit is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CueAt {
    /// The row of this `type` (main cue, intro, outro).
    Type(i64),
    /// The row with this 0-based `hotcue` number (hot cue, saved loop, jump cue).
    HotCue(i64),
}

/// The columns of a `cues` row (besides `id` and `track_id`).
#[derive(Clone, Debug, PartialEq)]
pub struct CueValues {
    pub kind: i64,
    pub position: f64,
    pub length: f64,
    pub hotcue: i64,
    pub label: String,
    /// `None`: the column keeps its default (a value from a database without `color`).
    pub color: Option<i64>,
}

/// One cue slot to set or clear. Setting updates the slot's row in place (its id stays), or
/// inserts one as Mixxx does; clearing deletes it. Other rows are never touched.
#[derive(Clone, Debug, PartialEq)]
pub struct CueEdit {
    pub track: i64,
    pub at: CueAt,
    /// `None`: remove the slot's row.
    pub row: Option<CueValues>,
}

/// Everything one import writes.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    pub cells: Vec<CellEdit>,
    pub crates: Vec<CrateEdit>,
    pub cues: Vec<CueEdit>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.crates.is_empty() && self.cues.is_empty()
    }
}

/// How the writer guards the database.
pub struct Guard<'a> {
    /// The process name that means Mixxx is running; `None` skips the check (only for a
    /// database no Mixxx knows, such as the demo's).
    pub process_name: Option<&'a str>,
    pub backups: &'a LocalBackups,
    /// Local backups to keep.
    pub keep: usize,
    /// Why the backup is taken (part of its name: `import`).
    pub reason: &'a str,
    pub busy_timeout: Duration,
    /// The stored crate name → the name [`CrateEdit::name`] uses (`None`: no usable name).
    pub crate_key: fn(&str) -> Option<String>,
}

/// What a write did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Written {
    /// The backup taken before writing.
    pub backup: Option<PathBuf>,
    /// `library` rows whose cells were set.
    pub cells: usize,
    pub memberships_added: usize,
    pub memberships_removed: usize,
    /// Crates created (names as stored), in creation order.
    pub crates_created: Vec<String>,
    /// Columns asked for that this database does not have, left alone.
    pub missing_columns: Vec<&'static str>,
    /// `cues` rows updated, inserted and deleted.
    pub cues_updated: usize,
    pub cues_inserted: usize,
    pub cues_deleted: usize,
}

/// Refuses with [`Error::MixxxRunning`] when a process named `process_name` runs.
pub fn refuse_if_running(db: &Path, process_name: Option<&str>) -> Result<()> {
    if let Some(found) = process_name.and_then(running::find) {
        return Err(Error::MixxxRunning {
            pid: found.pid,
            name: found.name,
            path: db.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `edits` into the database at `db` in one transaction, after a backup.
pub fn apply(db: &Path, edits: &Edits, guard: &Guard<'_>) -> Result<Written> {
    refuse_if_running(db, guard.process_name)?;
    check_file(db)?;
    let fail = |detail: String| Error::MixxxDbWriteFailed {
        path: db.to_path_buf(),
        detail,
    };
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(db, e))?;
    // Setting `foreign_keys` never touches the file; `journal_mode` is not asked for at all.
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .and_then(|()| conn.busy_timeout(guard.busy_timeout))
        .map_err(|e| classify(db, e))?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| classify(db, e))?;
    // From here on, every way out that does not commit rolls back.
    let result = (|| {
        let backup: LocalBackup = guard.backups.take(db, guard.reason, guard.keep)?;
        let mut written = write_all(&conn, edits, guard.crate_key).map_err(|e| {
            if is_busy(&e) {
                Error::MixxxDbLocked {
                    path: db.to_path_buf(),
                }
            } else {
                fail(e.to_string())
            }
        })?;
        written.backup = Some(backup.path);
        pause_for_tests();
        let check = integrity(&conn).map_err(|e| fail(e.to_string()))?;
        if check != ["ok"] {
            return Err(fail(format!(
                "integrity check after writing: {}",
                check.join("; ")
            )));
        }
        Ok(written)
    })();
    match result {
        Ok(written) => {
            conn.execute_batch("COMMIT")
                .map_err(|e| fail(format!("commit: {e}")))?;
            Ok(written)
        }
        Err(e) => {
            // The error that stopped the write is the one to report; a failed rollback
            // leaves a hot journal that the next connection rolls back anyway.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A debug-build-only pause inside the transaction, so a test can kill the process there for
/// certain (release builds have no such hook).
fn pause_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("MUSIC_COMMANDER_TEST_PAUSE_IN_WRITE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

fn write_all(
    conn: &Connection,
    edits: &Edits,
    crate_key: fn(&str) -> Option<String>,
) -> rusqlite::Result<Written> {
    let mut written = Written::default();
    let library = columns(conn, "library")?;
    let mut rows: HashSet<i64> = HashSet::new();
    for edit in &edits.cells {
        if !library.contains(edit.column) {
            if !written.missing_columns.contains(&edit.column) {
                written.missing_columns.push(edit.column);
            }
            continue;
        }
        // The column name comes from the field table, never from the database.
        let sql = format!("UPDATE library SET \"{}\" = ?1 WHERE id = ?2", edit.column);
        let changed = conn
            .prepare_cached(&sql)?
            .execute(params![sql_value(&edit.value), edit.track])?;
        if changed > 0 {
            rows.insert(edit.track);
        }
    }
    written.cells = rows.len();
    if !edits.crates.is_empty() {
        write_crates(conn, edits, crate_key, &mut written)?;
    }
    if !edits.cues.is_empty() {
        write_cues(conn, &edits.cues, &mut written)?;
    }
    Ok(written)
}

fn write_cues(conn: &Connection, edits: &[CueEdit], written: &mut Written) -> rusqlite::Result<()> {
    let Some(layout) = super::cues::CueColumns::probe(conn)? else {
        written.missing_columns.push("cues");
        return Ok(());
    };
    // Columns an older schema lacks are not written (their defaults apply).
    let mut names = vec!["type", "position", "hotcue"];
    if layout.length {
        names.push("length");
    }
    if layout.label {
        names.push("label");
    }
    for edit in edits {
        // Of duplicates Mixxx shows the last row (id order): that is the slot's row; the
        // others are hidden by it and go when the slot is written.
        let (filter, key) = match edit.at {
            CueAt::Type(t) => ("type = ?2", t),
            CueAt::HotCue(n) => ("hotcue = ?2 AND type IN (1, 4, 5)", n),
        };
        let ids: Vec<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM cues WHERE track_id = ?1 AND {filter} ORDER BY id DESC"
            ))?
            .query_map(params![edit.track, key], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let (keep, drop) = match (&edit.row, ids.split_first()) {
            (Some(_), Some((first, rest))) => (Some(*first), rest),
            _ => (None, &ids[..]),
        };
        for id in drop {
            written.cues_deleted += conn
                .prepare_cached("DELETE FROM cues WHERE id = ?1")?
                .execute([id])?;
        }
        let Some(row) = &edit.row else { continue };
        let mut columns = names.clone();
        let mut values: Vec<rusqlite::types::Value> =
            vec![row.kind.into(), row.position.into(), row.hotcue.into()];
        if layout.length {
            values.push(row.length.into());
        }
        if layout.label {
            values.push(row.label.clone().into());
        }
        if let (true, Some(color)) = (layout.color, row.color) {
            columns.push("color");
            values.push(color.into());
        }
        match keep {
            Some(id) => {
                let set = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("\"{c}\" = ?{}", i + 2))
                    .collect::<Vec<_>>()
                    .join(", ");
                values.insert(0, id.into());
                written.cues_updated += conn
                    .prepare_cached(&format!("UPDATE cues SET {set} WHERE id = ?1"))?
                    .execute(rusqlite::params_from_iter(values))?;
            }
            None => {
                // As Mixxx inserts a cue: every column but the id.
                let list = columns
                    .iter()
                    .map(|c| format!(", \"{c}\""))
                    .collect::<String>();
                let marks = (0..columns.len())
                    .map(|i| format!(", ?{}", i + 2))
                    .collect::<String>();
                values.insert(0, edit.track.into());
                written.cues_inserted += conn
                    .prepare_cached(&format!(
                        "INSERT INTO cues (track_id{list}) VALUES (?1{marks})"
                    ))?
                    .execute(rusqlite::params_from_iter(values))?;
            }
        }
    }
    Ok(())
}

fn write_crates(
    conn: &Connection,
    edits: &Edits,
    crate_key: fn(&str) -> Option<String>,
    written: &mut Written,
) -> rusqlite::Result<()> {
    // The caller's name → the crates stored under it, lowest id first (several stored names
    // can clean to one).
    let mut by_name: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    {
        let mut stmt = conn.prepare("SELECT id, name FROM crates ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name = match row.get_ref(1)? {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                _ => continue,
            };
            if let Some(key) = crate_key(&name) {
                by_name.entry(key).or_default().push(id);
            }
        }
    }
    let crate_columns = columns(conn, "crates")?;
    // As Mixxx creates a crate: name, not locked, not an Auto DJ source; `count` keeps its
    // default and `show` its default 1.
    let extra: Vec<&str> = ["locked", "autodj_source"]
        .into_iter()
        .filter(|c| crate_columns.contains(*c))
        .collect();
    let insert_crate = format!(
        "INSERT INTO crates (name{}) VALUES (?1{})",
        extra.iter().map(|c| format!(", {c}")).collect::<String>(),
        ", 0".repeat(extra.len())
    );
    for edit in &edits.crates {
        if edit.member {
            let id = match by_name.get(&edit.name).and_then(|ids| ids.first()) {
                Some(&id) => id,
                None => {
                    conn.prepare_cached(&insert_crate)?.execute([&edit.name])?;
                    let id = conn.last_insert_rowid();
                    by_name.insert(edit.name.clone(), vec![id]);
                    written.crates_created.push(edit.name.clone());
                    id
                }
            };
            written.memberships_added += conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO crate_tracks (crate_id, track_id) VALUES (?1, ?2)",
                )?
                .execute(params![id, edit.track])?;
        } else {
            for &id in by_name.get(&edit.name).into_iter().flatten() {
                written.memberships_removed += conn
                    .prepare_cached(
                        "DELETE FROM crate_tracks WHERE crate_id = ?1 AND track_id = ?2",
                    )?
                    .execute(params![id, edit.track])?;
            }
        }
    }
    Ok(())
}

fn sql_value(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Null => rusqlite::types::Value::Null,
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Integer(i) => rusqlite::types::Value::Integer(*i),
        Value::Real(f) => rusqlite::types::Value::Real(*f),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixxx::sample::{SampleDb, SampleTrack};

    fn sample(dir: &Path) -> (PathBuf, Vec<i64>) {
        let path = dir.join("mixxxdb.sqlite");
        let db = SampleDb {
            tracks: vec![
                SampleTrack {
                    location: b"/m/a.flac".to_vec(),
                    rating: Some(1),
                    crates: vec!["  Warm\nup ".into()],
                    ..Default::default()
                },
                SampleTrack {
                    location: b"/m/b.flac".to_vec(),
                    ..Default::default()
                },
            ],
            empty_crates: vec![],
        };
        let ids = db.build(&path).unwrap();
        (path, ids)
    }

    fn clean(name: &str) -> Option<String> {
        crate::sync::fields::clean_text(name)
    }

    fn guard<'a>(backups: &'a LocalBackups) -> Guard<'a> {
        Guard {
            process_name: None,
            backups,
            keep: 3,
            reason: "import",
            busy_timeout: Duration::from_millis(200),
            crate_key: clean,
        }
    }

    #[test]
    fn cells_and_memberships_are_written_after_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (db, ids) = sample(dir.path());
        let backups = LocalBackups::new(&dir.path().join("git"), &db);
        let edits = Edits {
            cells: vec![
                CellEdit {
                    track: ids[0],
                    column: "rating",
                    value: Value::Integer(5),
                },
                CellEdit {
                    track: ids[1],
                    column: "no_such_column",
                    value: Value::Integer(1),
                },
            ],
            crates: vec![
                CrateEdit {
                    track: ids[0],
                    name: "Warm up".into(),
                    member: false,
                },
                CrateEdit {
                    track: ids[1],
                    name: "Warm up".into(),
                    member: true,
                },
                CrateEdit {
                    track: ids[1],
                    name: "Festival".into(),
                    member: true,
                },
            ],
            cues: vec![],
        };
        let written = apply(&db, &edits, &guard(&backups)).unwrap();
        assert_eq!(written.cells, 1);
        assert_eq!(written.memberships_added, 2);
        assert_eq!(written.memberships_removed, 1);
        assert_eq!(written.crates_created, vec!["Festival".to_string()]);
        assert_eq!(written.missing_columns, vec!["no_such_column"]);
        let backup = written.backup.unwrap();
        let conn = Connection::open(&db).unwrap();
        let rating: i64 = conn
            .query_row("SELECT rating FROM library WHERE id = ?1", [ids[0]], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rating, 5);
        let crates: Vec<(String, i64, i64)> = conn
            .prepare(
                "SELECT c.name, c.show, c.count FROM crate_tracks ct JOIN crates c ON c.id = ct.crate_id WHERE ct.track_id = ?1 ORDER BY c.name",
            )
            .unwrap()
            .query_map([ids[1]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            crates,
            vec![("  Warm\nup ".into(), 1, 0), ("Festival".into(), 1, 0)],
            "an existing crate is matched by its cleaned name; a new one is created as Mixxx does"
        );
        let old: i64 = Connection::open(&backup)
            .unwrap()
            .query_row("SELECT rating FROM library WHERE id = ?1", [ids[0]], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(old, 1, "the backup holds the state before the write");
    }

    #[test]
    fn cue_slots_are_updated_in_place_inserted_and_deleted() {
        use crate::mixxx::sample::SampleCue;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixxxdb.sqlite");
        let cue = |kind, position, hotcue, label: &str| SampleCue {
            kind,
            position,
            length: 0.0,
            hotcue,
            label: label.into(),
            color: 0xFF0000,
        };
        let ids = SampleDb {
            tracks: vec![SampleTrack {
                location: b"/m/a.flac".to_vec(),
                cues: vec![
                    cue(1, 100.0, 0, "hidden duplicate"),
                    cue(1, 200.0, 0, "shown"),
                    cue(1, 300.0, 1, "removed"),
                    cue(8, 0.0, -1, ""),
                    cue(1, 400.0, 2, "untouched"),
                ],
                ..Default::default()
            }],
            empty_crates: vec![],
        }
        .build(&path)
        .unwrap();
        let rows = |conn: &Connection| -> Vec<(i64, i64, i64, String, String)> {
            conn.prepare("SELECT id, type, hotcue, quote(position), label FROM cues ORDER BY id")
                .unwrap()
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let before = rows(&Connection::open(&path).unwrap());
        let backups = LocalBackups::new(&dir.path().join("git"), &path);
        let set = |at, kind, hotcue, position| CueEdit {
            track: ids[0],
            at,
            row: Some(CueValues {
                kind,
                position,
                length: 0.0,
                hotcue,
                label: "new".into(),
                color: Some(0x00FF00),
            }),
        };
        let edits = Edits {
            cues: vec![
                set(CueAt::HotCue(0), 1, 0, 250.5),
                CueEdit {
                    track: ids[0],
                    at: CueAt::HotCue(1),
                    row: None,
                },
                set(CueAt::Type(2), 2, -1, 50.0),
            ],
            ..Edits::default()
        };
        let written = apply(&path, &edits, &guard(&backups)).unwrap();
        assert_eq!(
            (
                written.cues_updated,
                written.cues_inserted,
                written.cues_deleted
            ),
            (1, 1, 2)
        );
        let after = rows(&Connection::open(&path).unwrap());
        assert_eq!(
            after,
            vec![
                (before[1].0, 1, 0, "250.5".into(), "new".into()),
                before[3].clone(),
                before[4].clone(),
                (before[4].0 + 1, 2, -1, "50".into(), "new".into()),
            ],
            "the shown row keeps its id, its hidden duplicate and the cleared slot go, the marker and the other slot stay"
        );
    }

    #[test]
    fn a_locked_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (db, ids) = sample(dir.path());
        let backups = LocalBackups::new(&dir.path().join("git"), &db);
        let holder = Connection::open(&db).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let edits = Edits {
            cells: vec![CellEdit {
                track: ids[0],
                column: "rating",
                value: Value::Integer(5),
            }],
            crates: vec![],
            cues: vec![],
        };
        let err = apply(&db, &edits, &guard(&backups)).unwrap_err();
        assert!(matches!(err, Error::MixxxDbLocked { .. }), "{err:?}");
        holder.execute_batch("ROLLBACK").unwrap();
        assert!(backups.list().unwrap().is_empty(), "no backup either");
    }
}
