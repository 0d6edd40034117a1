//! Mixxx databases of every schema era the reader must handle.
//!
//! Each era starts as the product's newest-schema sample database
//! ([`music_commander::mixxx::sample`]), then the migrations added after the era are undone
//! newest first. `DROP COLUMN` keeps the remaining columns in place, so column order and
//! declared types still match real databases of each era.

use std::path::Path;

use rusqlite::Connection;

pub use music_commander::mixxx::sample::SampleCue;
pub use music_commander::mixxx::sample::SampleTrack as FixtureTrack;
use music_commander::mixxx::sample::{self, SampleDb};
use music_commander::{Error, Result};

/// The schema revisions we build and test against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaEra {
    /// Mixxx 2.3: revision 32 (no `last_played_at`, no `source_synchronized_ms`).
    Mixxx23,
    /// Mixxx 2.4 / 2.5: revision 39.
    Mixxx24,
    /// Development line: revision 41 (`track_locations.track_id`, `tuning_frequency_hz`).
    Newest,
}

impl SchemaEra {
    /// Every era, oldest first (handy for tests that must pass on all of them).
    pub const ALL: [SchemaEra; 3] = [SchemaEra::Mixxx23, SchemaEra::Mixxx24, SchemaEra::Newest];

    /// The value Mixxx writes to `settings.mixxx.schema.version` for this era.
    pub fn revision(self) -> u32 {
        match self {
            SchemaEra::Mixxx23 => 32,
            SchemaEra::Mixxx24 => 39,
            SchemaEra::Newest => sample::REVISION,
        }
    }
}

/// How to undo each migration after revision 32 that a reader can see, newest first.
/// Revision 39 only renamed `aif` file types, which the sample writer never produces.
const UNDO_MIGRATIONS: &[(u32, &str)] = &[
    (41, "ALTER TABLE track_locations DROP COLUMN track_id"),
    (40, "ALTER TABLE library DROP COLUMN tuning_frequency_hz"),
    (37, "ALTER TABLE library DROP COLUMN source_synchronized_ms"),
    (35, "ALTER TABLE library DROP COLUMN last_played_at"),
    (34, "DROP INDEX crate_tracks_track_id_index"),
];

/// Builds a database file of a given era.
pub struct MixxxDbBuilder {
    pub era: SchemaEra,
    pub tracks: Vec<FixtureTrack>,
    /// Crates with no tracks (Mixxx allows them).
    pub empty_crates: Vec<String>,
}

impl MixxxDbBuilder {
    pub fn new(era: SchemaEra) -> Self {
        MixxxDbBuilder {
            era,
            tracks: Vec::new(),
            empty_crates: Vec::new(),
        }
    }

    /// Writes the database to `path` (which must not exist) and returns the library ids of
    /// the tracks, in order.
    pub fn build(&self, path: &Path) -> Result<Vec<i64>> {
        let db = SampleDb {
            tracks: self.tracks.clone(),
            empty_crates: self.empty_crates.clone(),
        };
        let ids = db.build(path)?;
        let revision = self.era.revision();
        if revision < sample::REVISION {
            downgrade(path, revision).map_err(|e| Error::MixxxDbUnreadable {
                path: path.to_path_buf(),
                detail: format!("building fixture: {e}"),
            })?;
        }
        Ok(ids)
    }
}

fn downgrade(path: &Path, revision: u32) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA synchronous = OFF;")?;
    let tx = conn.transaction()?;
    for (_, sql) in UNDO_MIGRATIONS.iter().filter(|(rev, _)| *rev > revision) {
        tx.execute_batch(sql)?;
    }
    tx.execute(
        "UPDATE settings SET value = ?1 WHERE name = 'mixxx.schema.version'",
        [revision.to_string()],
    )?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap();
        stmt.query_map([table], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn eras_have_their_columns_and_revision() {
        let dir = tempfile::tempdir().unwrap();
        for era in SchemaEra::ALL {
            let path = dir.path().join(format!("{era:?}.sqlite"));
            MixxxDbBuilder::new(era).build(&path).unwrap();
            let conn = Connection::open(&path).unwrap();
            let library = columns(&conn, "library");
            let locations = columns(&conn, "track_locations");
            let rev = era.revision();
            assert!(library.contains(&"color".into()));
            assert_eq!(library.contains(&"last_played_at".into()), rev >= 35);
            assert_eq!(
                library.contains(&"source_synchronized_ms".into()),
                rev >= 37
            );
            assert_eq!(library.contains(&"tuning_frequency_hz".into()), rev >= 40);
            assert_eq!(locations.contains(&"track_id".into()), rev >= 41);
            if era == SchemaEra::Mixxx23 {
                assert_eq!(library.last().map(String::as_str), Some("color"));
            }
            let version: String = conn
                .query_row(
                    "SELECT value FROM settings WHERE name = 'mixxx.schema.version'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(version, rev.to_string());
            let journal: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(journal, "delete");
        }
    }
}
