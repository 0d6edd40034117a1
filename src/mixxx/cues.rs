//! Reading Mixxx's `cues` table: a second source beside `library`, as crates are. Columns
//! are taken by name; a database without `label` or `color` (an old schema) reads them as
//! empty / absent.

use rusqlite::Connection;

use super::decode;

/// One row of `cues`, of a type a DJ makes (the reader skips the rest: see
/// [`crate::sync::cues::TRAVELLING`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CueRow {
    /// Index into [`super::Library::tracks`].
    pub track: u32,
    /// `cues.id`.
    pub id: i64,
    /// `cues.type`.
    pub kind: i64,
    /// In samples (stereo frames × 2), as stored.
    pub position: f64,
    pub length: f64,
    /// 0-based hot-cue number, −1 for none.
    pub hotcue: i64,
    pub label: Box<str>,
    /// `None` when the database has no `color` column.
    pub color: Option<i64>,
}

/// Which optional columns `cues` has; `None` when the table lacks the essential ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CueColumns {
    pub length: bool,
    pub label: bool,
    pub color: bool,
}

impl CueColumns {
    pub fn probe(conn: &Connection) -> rusqlite::Result<Option<CueColumns>> {
        let columns = super::columns(conn, "cues")?;
        let essential = ["id", "track_id", "type", "position", "hotcue"];
        Ok(essential
            .iter()
            .all(|c| columns.contains(*c))
            .then(|| CueColumns {
                length: columns.contains("length"),
                label: columns.contains("label"),
                color: columns.contains("color"),
            }))
    }
}

/// Every travelling cue of the tracks in `track_index` (library id → index), sorted by track
/// index, then id.
pub(super) fn read(
    conn: &Connection,
    layout: CueColumns,
    track_index: &std::collections::HashMap<i64, usize>,
) -> rusqlite::Result<Vec<CueRow>> {
    let optional = |present: bool, name: &str, default: &str| {
        if present {
            format!("\"{name}\"")
        } else {
            default.to_string()
        }
    };
    let types = crate::sync::cues::TRAVELLING
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT id, track_id, type, position, {}, hotcue, {}, {} FROM cues WHERE type IN ({types}) ORDER BY id",
        optional(layout.length, "length", "0"),
        optional(layout.label, "label", "''"),
        optional(layout.color, "color", "NULL"),
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let (Some(id), Some(track), Some(kind), Some(position), Some(hotcue)) = (
            decode::integer(row.get_ref(0)?),
            decode::integer(row.get_ref(1)?).and_then(|t| track_index.get(&t)),
            decode::integer(row.get_ref(2)?),
            decode::real(row.get_ref(3)?),
            decode::integer(row.get_ref(5)?),
        ) else {
            continue;
        };
        out.push(CueRow {
            track: *track as u32,
            id,
            kind,
            position,
            length: decode::real(row.get_ref(4)?).unwrap_or(0.0),
            hotcue,
            label: decode::text(row.get_ref(6)?)
                .unwrap_or_default()
                .into_boxed_str(),
            // NULL when the column is missing.
            color: decode::integer(row.get_ref(7)?),
        });
    }
    out.sort_by_key(|r| (r.track, r.id));
    out.shrink_to_fit();
    Ok(out)
}
