//! The managed fields: one table, [`FIELDS`], declares each field once — its name, where it
//! comes from in Mixxx, whether it holds one value or a set, the codecs both ways and how a
//! change reads. Everything else (the reader's columns, the plan, the report, the config)
//! asks the table.
//!
//! Every value is normalised to one canonical string so that comparing desired against current
//! metadata is exact: git-annex compares values as byte strings (`128` ≠ `128.00`), and a
//! changed spelling would otherwise rewrite every file.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::mixxx::{Column, Library, Raw, Request};
use crate::model::FieldSet;
use crate::sync::beatgrid;
use crate::sync::cues::{self, CueSlot};
use crate::sync::merge::Arity;

/// A field we know how to sync; indexes [`FIELDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldId {
    Rating,
    Bpm,
    Color,
    Key,
    Artist,
    Title,
    Album,
    Genre,
    Year,
    TrackNumber,
    Comment,
    Crate,
    CueMain,
    CueIntro,
    CueOutro,
    HotCues,
    HotCue1,
    HotCue2,
    HotCue3,
    HotCue4,
    HotCue5,
    HotCue6,
    HotCue7,
    HotCue8,
    HotCue9,
    HotCue10,
    HotCue11,
    HotCue12,
    HotCue13,
    HotCue14,
    HotCue15,
    HotCue16,
    HotCue17,
    HotCue18,
    HotCue19,
    HotCue20,
    HotCue21,
    HotCue22,
    HotCue23,
    HotCue24,
    HotCue25,
    HotCue26,
    HotCue27,
    HotCue28,
    HotCue29,
    HotCue30,
    HotCue31,
    HotCue32,
    HotCue33,
    HotCue34,
    HotCue35,
    HotCue36,
    HotCue37,
    BeatGrid,
}

/// Where a field's Mixxx value lives.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Columns of `library`, handed to the codecs in this order.
    Columns(&'static [Column]),
    /// Crate membership (`crates` + `crate_tracks`).
    Crates,
    /// The `cues` table (and `library.samplerate`, for the seconds shown).
    Cues,
}

/// A value the repository holds that cannot be written into Mixxx, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unrepresentable {
    #[error("{0} values, Mixxx holds one")]
    Several(usize),
    #[error("{0:?} is not a value Mixxx can store here")]
    Invalid(String),
}

/// How a field converts. Single-valued fields convert column values to at most one git-annex
/// value and back; crates are names, taken as they are.
#[derive(Clone, Copy)]
pub enum Codec {
    Single {
        /// Mixxx columns → the git-annex value (`None`: the field is absent).
        forward: fn(&[Raw<'_>], &Options) -> Option<String>,
        /// The git-annex value (`None`: absent) → one value per column.
        inverse: fn(Option<&str>, &Options) -> Result<Vec<crate::mixxx::Value>, Unrepresentable>,
    },
    Crates,
    /// One cue slot, or the index of used hot-cue slots ([`crate::sync::cues`]).
    Cue(CueSlot),
}

/// One managed field.
pub struct FieldDef {
    pub id: FieldId,
    /// The config name and, unless renamed, the git-annex field name.
    pub name: &'static str,
    /// Other names the config accepts.
    pub aliases: &'static [&'static str],
    pub source: Source,
    /// One value or a set: decides how it merges and how a change reads (`3 → 5` or
    /// `+Festival −Warmup`).
    pub arity: Arity,
    pub codec: Codec,
}

/// The column the cue values' seconds are computed from.
pub const SAMPLERATE: Column = Column::integer("samplerate");

/// What the codecs need besides the values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub key_notation: KeyNotation,
    /// This Mixxx database's schema revision, once read (which Mixxx line measured the
    /// cue positions: [`cues::era`]).
    pub mixxx_revision: Option<u32>,
}

const fn cue_field(id: FieldId, name: &'static str, slot: CueSlot) -> FieldDef {
    FieldDef {
        id,
        name,
        aliases: &[],
        source: Source::Cues,
        arity: Arity::Single,
        codec: Codec::Cue(slot),
    }
}

const fn text_field(id: FieldId, name: &'static str, column: &'static [Column]) -> FieldDef {
    FieldDef {
        id,
        name,
        aliases: &[],
        source: Source::Columns(column),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, _| raw[0].as_text().and_then(clean_text),
            inverse: |value, _| {
                Ok(vec![crate::mixxx::Value::Text(
                    value.unwrap_or("").to_string(),
                )])
            },
        },
    }
}

/// The Mixxx value `parse` reads from `value`, when the forward codec gives back exactly
/// `value` for it; any other spelling (`05`, `128`, `#ff0000`, `7`) is not a value Mixxx could
/// have produced, so it is not written.
fn exactly<T: Copy>(
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
    forward: impl Fn(T) -> Option<String>,
) -> Result<T, Unrepresentable> {
    parse(value)
        .filter(|&t| forward(t).as_deref() == Some(value))
        .ok_or_else(|| Unrepresentable::Invalid(value.to_string()))
}

/// The table. Order is the order changes are shown in, and must follow [`FieldId`].
pub static FIELDS: [FieldDef; 54] = [
    FieldDef {
        id: FieldId::Rating,
        name: "rating",
        aliases: &[],
        source: Source::Columns(&[Column::integer("rating")]),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, _| rating(raw[0].as_integer()),
            inverse: |value, _| {
                use crate::mixxx::Value;
                match value {
                    None => Ok(vec![Value::Integer(0)]),
                    Some(v) => exactly(v, |s| s.parse().ok(), |r| rating(Some(r)))
                        .map(|r| vec![Value::Integer(r)]),
                }
            },
        },
    },
    FieldDef {
        id: FieldId::Bpm,
        name: "bpm",
        aliases: &[],
        source: Source::Columns(&[Column::real("bpm")]),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, _| bpm(raw[0].as_real()),
            inverse: |value, _| {
                use crate::mixxx::Value;
                match value {
                    None => Ok(vec![Value::Real(0.0)]),
                    Some(v) => exactly(v, |s| s.parse().ok(), |b| bpm(Some(b)))
                        .map(|b| vec![Value::Real(b)]),
                }
            },
        },
    },
    FieldDef {
        id: FieldId::Color,
        name: "color",
        aliases: &[],
        source: Source::Columns(&[Column::integer("color")]),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, _| color(raw[0].as_integer()),
            inverse: |value, _| {
                use crate::mixxx::Value;
                match value {
                    None => Ok(vec![Value::Null]),
                    Some(v) => exactly(
                        v,
                        |s| {
                            let hex = s.strip_prefix('#').filter(|hex| hex.len() == 6)?;
                            i64::from_str_radix(hex, 16).ok()
                        },
                        |c| color(Some(c)),
                    )
                    .map(|c| vec![Value::Integer(c)]),
                }
            },
        },
    },
    FieldDef {
        id: FieldId::Key,
        name: "key",
        aliases: &[],
        source: Source::Columns(&[Column::text("key"), Column::integer("key_id")]),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, o| key(raw[1].as_integer(), raw[0].as_text(), o.key_notation),
            inverse: |value, o| {
                use crate::mixxx::Value;
                match value {
                    None => Ok(vec![Value::Text(String::new()), Value::Integer(0)]),
                    Some(v) => {
                        // Mixxx shows the key from `key_id` and parses the text on load, so
                        // both are written, and only a text that names a key (in this
                        // notation, or for `as-stored` in any of the three) is a value.
                        let notations = match o.key_notation {
                            KeyNotation::AsStored => &[
                                KeyNotation::Traditional,
                                KeyNotation::Lancelot,
                                KeyNotation::OpenKey,
                            ][..],
                            notation => &[notation][..],
                        };
                        notations
                            .iter()
                            .find_map(|&n| {
                                (1..=24).find(|&id| key(Some(id), None, n).as_deref() == Some(v))
                            })
                            .map(|id| vec![Value::Text(v.to_string()), Value::Integer(id)])
                            .ok_or_else(|| Unrepresentable::Invalid(v.to_string()))
                    }
                }
            },
        },
    },
    text_field(FieldId::Artist, "artist", &[Column::text("artist")]),
    text_field(FieldId::Title, "title", &[Column::text("title")]),
    text_field(FieldId::Album, "album", &[Column::text("album")]),
    text_field(FieldId::Genre, "genre", &[Column::text("genre")]),
    text_field(FieldId::Year, "year", &[Column::text("year")]),
    text_field(
        FieldId::TrackNumber,
        "tracknumber",
        &[Column::text("tracknumber")],
    ),
    text_field(FieldId::Comment, "comment", &[Column::text("comment")]),
    FieldDef {
        id: FieldId::Crate,
        name: "crate",
        aliases: &["crates"],
        source: Source::Crates,
        arity: Arity::Multi,
        codec: Codec::Crates,
    },
    cue_field(FieldId::CueMain, "cue-main", CueSlot::Main),
    cue_field(FieldId::CueIntro, "cue-intro", CueSlot::Intro),
    cue_field(FieldId::CueOutro, "cue-outro", CueSlot::Outro),
    FieldDef {
        id: FieldId::HotCues,
        name: "hotcues",
        aliases: &[],
        source: Source::Cues,
        arity: Arity::Multi,
        codec: Codec::Cue(CueSlot::Index),
    },
    cue_field(FieldId::HotCue1, "hotcue-1", CueSlot::Hot(1)),
    cue_field(FieldId::HotCue2, "hotcue-2", CueSlot::Hot(2)),
    cue_field(FieldId::HotCue3, "hotcue-3", CueSlot::Hot(3)),
    cue_field(FieldId::HotCue4, "hotcue-4", CueSlot::Hot(4)),
    cue_field(FieldId::HotCue5, "hotcue-5", CueSlot::Hot(5)),
    cue_field(FieldId::HotCue6, "hotcue-6", CueSlot::Hot(6)),
    cue_field(FieldId::HotCue7, "hotcue-7", CueSlot::Hot(7)),
    cue_field(FieldId::HotCue8, "hotcue-8", CueSlot::Hot(8)),
    cue_field(FieldId::HotCue9, "hotcue-9", CueSlot::Hot(9)),
    cue_field(FieldId::HotCue10, "hotcue-10", CueSlot::Hot(10)),
    cue_field(FieldId::HotCue11, "hotcue-11", CueSlot::Hot(11)),
    cue_field(FieldId::HotCue12, "hotcue-12", CueSlot::Hot(12)),
    cue_field(FieldId::HotCue13, "hotcue-13", CueSlot::Hot(13)),
    cue_field(FieldId::HotCue14, "hotcue-14", CueSlot::Hot(14)),
    cue_field(FieldId::HotCue15, "hotcue-15", CueSlot::Hot(15)),
    cue_field(FieldId::HotCue16, "hotcue-16", CueSlot::Hot(16)),
    cue_field(FieldId::HotCue17, "hotcue-17", CueSlot::Hot(17)),
    cue_field(FieldId::HotCue18, "hotcue-18", CueSlot::Hot(18)),
    cue_field(FieldId::HotCue19, "hotcue-19", CueSlot::Hot(19)),
    cue_field(FieldId::HotCue20, "hotcue-20", CueSlot::Hot(20)),
    cue_field(FieldId::HotCue21, "hotcue-21", CueSlot::Hot(21)),
    cue_field(FieldId::HotCue22, "hotcue-22", CueSlot::Hot(22)),
    cue_field(FieldId::HotCue23, "hotcue-23", CueSlot::Hot(23)),
    cue_field(FieldId::HotCue24, "hotcue-24", CueSlot::Hot(24)),
    cue_field(FieldId::HotCue25, "hotcue-25", CueSlot::Hot(25)),
    cue_field(FieldId::HotCue26, "hotcue-26", CueSlot::Hot(26)),
    cue_field(FieldId::HotCue27, "hotcue-27", CueSlot::Hot(27)),
    cue_field(FieldId::HotCue28, "hotcue-28", CueSlot::Hot(28)),
    cue_field(FieldId::HotCue29, "hotcue-29", CueSlot::Hot(29)),
    cue_field(FieldId::HotCue30, "hotcue-30", CueSlot::Hot(30)),
    cue_field(FieldId::HotCue31, "hotcue-31", CueSlot::Hot(31)),
    cue_field(FieldId::HotCue32, "hotcue-32", CueSlot::Hot(32)),
    cue_field(FieldId::HotCue33, "hotcue-33", CueSlot::Hot(33)),
    cue_field(FieldId::HotCue34, "hotcue-34", CueSlot::Hot(34)),
    cue_field(FieldId::HotCue35, "hotcue-35", CueSlot::Hot(35)),
    cue_field(FieldId::HotCue36, "hotcue-36", CueSlot::Hot(36)),
    cue_field(FieldId::HotCue37, "hotcue-37", CueSlot::Hot(37)),
    FieldDef {
        id: FieldId::BeatGrid,
        name: "beatgrid",
        aliases: &[],
        source: Source::Columns(&[
            Column::blob(beatgrid::BEATS),
            Column::text(beatgrid::VERSION),
            Column::text(beatgrid::SUB_VERSION),
            Column::integer(beatgrid::BPM_LOCK),
        ]),
        arity: Arity::Single,
        codec: Codec::Single {
            forward: |raw, _| beatgrid::forward(raw),
            inverse: |value, _| match value {
                None => Ok(beatgrid::Grid::columns(None)),
                Some(v) => beatgrid::decode(v).map(|g| beatgrid::Grid::columns(Some(&g))),
            },
        },
    },
];

impl FieldId {
    pub const ALL: [FieldId; 54] = [
        FieldId::Rating,
        FieldId::Bpm,
        FieldId::Color,
        FieldId::Key,
        FieldId::Artist,
        FieldId::Title,
        FieldId::Album,
        FieldId::Genre,
        FieldId::Year,
        FieldId::TrackNumber,
        FieldId::Comment,
        FieldId::Crate,
        FieldId::CueMain,
        FieldId::CueIntro,
        FieldId::CueOutro,
        FieldId::HotCues,
        FieldId::HotCue1,
        FieldId::HotCue2,
        FieldId::HotCue3,
        FieldId::HotCue4,
        FieldId::HotCue5,
        FieldId::HotCue6,
        FieldId::HotCue7,
        FieldId::HotCue8,
        FieldId::HotCue9,
        FieldId::HotCue10,
        FieldId::HotCue11,
        FieldId::HotCue12,
        FieldId::HotCue13,
        FieldId::HotCue14,
        FieldId::HotCue15,
        FieldId::HotCue16,
        FieldId::HotCue17,
        FieldId::HotCue18,
        FieldId::HotCue19,
        FieldId::HotCue20,
        FieldId::HotCue21,
        FieldId::HotCue22,
        FieldId::HotCue23,
        FieldId::HotCue24,
        FieldId::HotCue25,
        FieldId::HotCue26,
        FieldId::HotCue27,
        FieldId::HotCue28,
        FieldId::HotCue29,
        FieldId::HotCue30,
        FieldId::HotCue31,
        FieldId::HotCue32,
        FieldId::HotCue33,
        FieldId::HotCue34,
        FieldId::HotCue35,
        FieldId::HotCue36,
        FieldId::HotCue37,
        FieldId::BeatGrid,
    ];

    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }

    /// The name used in the config and, unless renamed, as the git-annex field name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn arity(self) -> Arity {
        self.def().arity
    }

    /// The config name `cues`: every cue slot and the hot-cue index, as one choice.
    pub const CUES_GROUP: &'static str = "cues";

    /// What a config without `[sync] fields` manages: every field but the beat grid. An
    /// analysed grid is recomputed identically from the same file on every machine, and a
    /// grid value is ~60 bytes a track (kilobytes for a beat map) in every clone forever, so
    /// carrying grids is a choice: the DJ who fixes grids by hand turns it on.
    pub fn defaults() -> Vec<FieldId> {
        FieldId::ALL
            .into_iter()
            .filter(|f| *f != FieldId::BeatGrid)
            .collect()
    }

    /// The fields a `[sync] fields` entry names: one field, or (`cues`) the group.
    pub fn from_config_name(name: &str) -> Option<Vec<FieldId>> {
        if name.trim().eq_ignore_ascii_case(Self::CUES_GROUP) {
            return Some(FieldId::ALL.into_iter().filter(|f| f.is_cue()).collect());
        }
        Self::from_name(name).map(|f| vec![f])
    }

    /// The names `[sync] fields` accepts, one per choice (the cue fields as `cues`).
    pub fn config_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = FieldId::ALL
            .iter()
            .filter(|f| !f.is_cue())
            .map(|f| f.name())
            .collect();
        names.push(Self::CUES_GROUP);
        names
    }

    /// A cue slot or the hot-cue index.
    pub fn is_cue(self) -> bool {
        matches!(self.def().source, Source::Cues)
    }

    /// The cue slot this field holds.
    pub fn cue_slot(self) -> Option<CueSlot> {
        match self.def().codec {
            Codec::Cue(slot) => Some(slot),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<FieldId> {
        let name = name.trim().to_ascii_lowercase();
        FIELDS
            .iter()
            .find(|f| f.name == name || f.aliases.contains(&name.as_str()))
            .map(|f| f.id)
    }
}

/// How the `key` field is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyNotation {
    #[default]
    Traditional,
    #[serde(rename = "openkey")]
    OpenKey,
    Lancelot,
    AsStored,
}

/// The fields this run manages and the git-annex name of each. Fields outside this set are
/// never read for the plan and never written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedFields {
    /// In table order, the order changes are shown in.
    fields: Vec<(FieldId, Arc<str>)>,
    /// Indices into `fields`, sorted by git-annex name: the order a `FieldSet` keeps, so
    /// desired sets are built by appending and compared by one merge.
    by_name: Vec<usize>,
    pub options: Options,
}

impl ManagedFields {
    /// Validates git-annex names now (a rejected name would kill git-annex's batch process
    /// mid-run) and rejects two fields sharing one git-annex name (names are case-insensitive
    /// in git-annex, so `Rating` and `rating` are one field).
    pub fn new(
        selected: &[FieldId],
        names: &BTreeMap<String, String>,
    ) -> Result<ManagedFields, String> {
        let mut fields: Vec<(FieldId, String)> = Vec::new();
        let mut selected = selected.to_vec();
        selected.sort();
        selected.dedup();
        for field in selected {
            let renamed = names
                .iter()
                .find(|(from, _)| FieldId::from_name(from) == Some(field))
                .map(|(_, to)| to.trim().to_string());
            let annex_name = FieldSet::canonical_name(&renamed.unwrap_or(field.name().into()));
            crate::annex::writer::validate_field_name(&annex_name).map_err(|why| {
                format!(
                    "git-annex field name {annex_name:?} for {}: {why}",
                    field.name()
                )
            })?;
            if let Some((other, _)) = fields.iter().find(|(_, n)| **n == annex_name) {
                return Err(format!(
                    "{} and {} would both be stored as git-annex field {annex_name:?}",
                    other.name(),
                    field.name()
                ));
            }
            fields.push((field, annex_name));
        }
        Ok(ManagedFields::indexed(fields, Options::default()))
    }

    fn indexed(fields: Vec<(FieldId, String)>, options: Options) -> ManagedFields {
        let fields: Vec<(FieldId, Arc<str>)> =
            fields.into_iter().map(|(f, n)| (f, n.into())).collect();
        let mut by_name: Vec<usize> = (0..fields.len()).collect();
        by_name.sort_by(|&a, &b| fields[a].1.cmp(&fields[b].1));
        ManagedFields {
            fields,
            by_name,
            options,
        }
    }

    /// All fields under their own names.
    pub fn all() -> ManagedFields {
        ManagedFields::new(&FieldId::ALL, &BTreeMap::new()).expect("the built-in names are valid")
    }

    pub fn with_key_notation(mut self, notation: KeyNotation) -> Self {
        self.options.key_notation = notation;
        self
    }

    /// (field, git-annex name) pairs in table order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &str)> {
        self.fields.iter().map(|(f, n)| (*f, &**n))
    }

    /// (field, git-annex name) pairs in git-annex name order.
    pub fn iter_by_name(&self) -> impl Iterator<Item = (FieldId, &str)> {
        self.iter_by_name_shared().map(|(f, n)| (f, &**n))
    }

    /// [`ManagedFields::iter_by_name`] with the names shared: a copy costs no allocation (a
    /// base is made for every file with every managed name).
    pub fn iter_by_name_shared(&self) -> impl Iterator<Item = (FieldId, &Arc<str>)> {
        self.by_name
            .iter()
            .map(|&i| (self.fields[i].0, &self.fields[i].1))
    }

    /// The git-annex name of `field` (its own name when it is not managed).
    pub fn annex_name(&self, field: FieldId) -> &str {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(field.name(), |(_, n)| &**n)
    }

    /// The managed field stored under git-annex name `name` (canonical spelling).
    pub fn field_named(&self, name: &str) -> Option<FieldId> {
        self.by_name
            .binary_search_by(|&i| (*self.fields[i].1).cmp(name))
            .ok()
            .map(|i| self.fields[self.by_name[i]].0)
    }

    pub fn contains(&self, field: FieldId) -> bool {
        self.fields.iter().any(|(f, _)| *f == field)
    }

    /// The git-annex names, in table order.
    pub fn annex_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(_, n)| &**n)
    }

    /// These fields less `drop`.
    pub fn without(&self, drop: &[FieldId]) -> ManagedFields {
        let fields: Vec<(FieldId, String)> = self
            .fields
            .iter()
            .filter(|(f, _)| !drop.contains(f))
            .map(|(f, n)| (*f, n.to_string()))
            .collect();
        ManagedFields::indexed(fields, self.options)
    }

    /// Managed fields `library` could not read: every column of the field is missing from
    /// this database or holds no value that decodes, or (crates) its tables are missing. Such
    /// a field has no Mixxx value at all, which is not the same as an empty one: managing it
    /// would remove it everywhere.
    pub fn unreadable(&self, library: &Library) -> Vec<FieldId> {
        self.fields
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| match f.def().source {
                Source::Columns(columns) => columns.iter().all(|c| {
                    library.missing_columns.contains(&c.name)
                        || library.undecodable_columns.contains(&c.name)
                }),
                Source::Crates => !library.has_crates,
                Source::Cues => !library.has_cues,
            })
            .collect()
    }

    /// What the Mixxx reader must read for these fields.
    pub fn request(&self) -> Request {
        let mut request = Request::default();
        for (field, _) in &self.fields {
            match field.def().source {
                Source::Columns(columns) => request.columns.extend_from_slice(columns),
                Source::Crates => request.crates = true,
                Source::Cues => {
                    request.cues = true;
                    request.columns.push(SAMPLERATE);
                }
            }
        }
        request
    }

    /// Resolves where each managed field's columns are in `library`'s rows, once per run.
    pub fn reader<'a>(&'a self, library: &'a Library) -> DesiredReader<'a> {
        let positions = self
            .by_name
            .iter()
            .map(|&i| match self.fields[i].0.def().source {
                Source::Columns(columns) => {
                    columns.iter().map(|c| library.position(c.name)).collect()
                }
                Source::Crates => Vec::new(),
                Source::Cues => vec![library.position(SAMPLERATE.name)],
            })
            .collect();
        DesiredReader {
            managed: self,
            library,
            positions,
            plain_fields: self.fields.iter().filter(|(f, _)| !f.is_cue()).count(),
        }
    }
}

/// Computes the fields a track should have in git-annex, with column positions resolved.
pub struct DesiredReader<'a> {
    managed: &'a ManagedFields,
    library: &'a Library,
    /// Per field in git-annex name order, the position of each of its columns.
    positions: Vec<Vec<Option<usize>>>,
    /// Managed fields that are not cue fields.
    plain_fields: usize,
}

impl DesiredReader<'_> {
    /// The fields the track at index `track` should have: only managed fields, only
    /// non-empty ones.
    pub fn desired(&self, track: usize) -> FieldSet {
        let fields = &self.managed.fields;
        let cue_rows = self.library.cues(track);
        // Most tracks have no cues: room for the other fields only.
        let mut set = FieldSet::with_capacity(match cue_rows.is_empty() {
            true => self.plain_fields,
            false => fields.len(),
        });
        let mut raw: Vec<Raw<'_>> = Vec::with_capacity(2);
        for (slot, &i) in self.managed.by_name.iter().enumerate() {
            let (field, name) = (&fields[i].0, &*fields[i].1);
            match field.def().codec {
                Codec::Crates => set.set(
                    name,
                    self.library.tracks[track]
                        .crates
                        .iter()
                        .filter_map(|&id| clean_text(self.library.crate_name(id))),
                ),
                Codec::Cue(cue_slot) => {
                    let rows = cue_rows;
                    if rows.is_empty() {
                        continue;
                    }
                    let samplerate = self
                        .library
                        .value(track, self.positions[slot][0])
                        .as_integer();
                    match cue_slot {
                        CueSlot::Index => set.set(name, cues::index(rows)),
                        _ => {
                            if let Some(value) = cues::forward(cue_slot, rows, samplerate) {
                                set.insert(name, value);
                            }
                        }
                    }
                }
                Codec::Single { forward, .. } => {
                    raw.clear();
                    raw.extend(
                        self.positions[slot]
                            .iter()
                            .map(|&p| self.library.value(track, p)),
                    );
                    if let Some(value) = forward(&raw, &self.managed.options) {
                        set.insert(name, value);
                    }
                }
            }
        }
        set
    }
}

/// `"1"`..`"5"`; 0 (unrated), NULL and out-of-range values are absent.
pub fn rating(rating: Option<i64>) -> Option<String> {
    rating
        .filter(|r| (1..=5).contains(r))
        .map(|r| r.to_string())
}

/// The fastest tempo taken as a real BPM; above it a value is a corrupt or mis-analysed one
/// (`1e308` would otherwise be written as a 310-digit value).
pub const MAX_BPM: f64 = 1000.0;

/// Two decimals (`"128.00"`), so git-annex's numeric matchers and views see one spelling.
/// 0, NULL, negative, non-finite and implausible (> [`MAX_BPM`]) values mean "unknown", so an
/// implausible BPM counts as no value, in the three-way merge too.
pub fn bpm(bpm: Option<f64>) -> Option<String> {
    bpm.filter(|b| b.is_finite() && *b > 0.0 && *b <= MAX_BPM)
        .map(|b| format!("{b:.2}"))
        .filter(|s| s != "0.00")
}

/// `"#RRGGBB"`, upper-case; values that are not a 24-bit RGB colour are absent.
pub fn color(color: Option<i64>) -> Option<String> {
    color
        .filter(|c| (0..=0xFF_FFFF).contains(c))
        .map(|c| format!("#{c:06X}"))
}

/// Text as stored, made safe and stable: control characters (newline, tab, …) and runs of
/// whitespace become one space, ends are trimmed; nothing left means absent.
pub fn clean_text(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = true;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

const TRADITIONAL_MAJOR: [&str; 12] = [
    "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];
const TRADITIONAL_MINOR: [&str; 12] = [
    "Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm",
];

/// The key in the chosen notation. Mixxx's `key_id` is canonical (1–12 = C…B major,
/// 13–24 = C…B minor); the stored text depends on the notation active when the row was saved,
/// so it is only used when there is no `key_id` (or for `as-stored`).
pub fn key(key_id: Option<i64>, stored: Option<&str>, notation: KeyNotation) -> Option<String> {
    let canonical = key_id.filter(|id| (1..=24).contains(id)).map(|id| {
        let minor = id > 12;
        let semitone = ((id - 1) % 12) as usize;
        (semitone, minor)
    });
    match (notation, canonical) {
        (KeyNotation::AsStored, _) | (_, None) => {
            stored.and_then(|s| clean_text(&s.replace('♯', "#").replace('♭', "b")))
        }
        (KeyNotation::Traditional, Some((s, minor))) => Some(
            if minor {
                TRADITIONAL_MINOR[s]
            } else {
                TRADITIONAL_MAJOR[s]
            }
            .to_string(),
        ),
        (KeyNotation::Lancelot | KeyNotation::OpenKey, Some((s, minor))) => {
            // Both wheels step by fifths and number a minor key like its relative major
            // (three semitones up): Lancelot puts C major at 8, OpenKey at 1.
            let major = if minor { (s + 3) % 12 } else { s };
            let fifths = (major * 7) % 12;
            Some(match notation {
                KeyNotation::Lancelot => {
                    format!("{}{}", (fifths + 7) % 12 + 1, if minor { 'A' } else { 'B' })
                }
                _ => format!("{}{}", fifths + 1, if minor { 'm' } else { 'd' }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rating_values() {
        assert_eq!(rating(None), None);
        assert_eq!(rating(Some(0)), None);
        assert_eq!(rating(Some(-1)), None);
        assert_eq!(rating(Some(6)), None);
        for r in 1..=5 {
            assert_eq!(rating(Some(r)), Some(r.to_string()));
        }
    }

    #[test]
    fn bpm_values() {
        assert_eq!(bpm(None), None);
        assert_eq!(bpm(Some(0.0)), None);
        assert_eq!(bpm(Some(-120.0)), None);
        assert_eq!(bpm(Some(f64::NAN)), None);
        assert_eq!(bpm(Some(f64::INFINITY)), None);
        assert_eq!(bpm(Some(0.001)), None);
        assert_eq!(bpm(Some(128.0)), Some("128.00".into()));
        assert_eq!(bpm(Some(127.999)), Some("128.00".into()));
        assert_eq!(bpm(Some(93.456)), Some("93.46".into()));
        // Implausible tempos are no value, as NaN is: never a 310-digit string.
        assert_eq!(bpm(Some(1e308)), None);
        assert_eq!(bpm(Some(1000.01)), None);
        assert_eq!(bpm(Some(1000.0)), Some("1000.00".into()));
    }

    #[test]
    fn color_values() {
        assert_eq!(color(None), None);
        assert_eq!(color(Some(16711680)), Some("#FF0000".into()));
        assert_eq!(color(Some(0)), Some("#000000".into()));
        assert_eq!(color(Some(0x0a0b0c)), Some("#0A0B0C".into()));
        assert_eq!(color(Some(-1)), None);
        assert_eq!(color(Some(0x1000000)), None);
    }

    #[test]
    fn text_cleaning() {
        assert_eq!(clean_text(""), None);
        assert_eq!(clean_text("   \t\n"), None);
        assert_eq!(clean_text("a\nb"), Some("a b".into()));
        assert_eq!(clean_text("  a \t\r\n  b  "), Some("a b".into()));
        assert_eq!(clean_text("x\u{0}y\u{7f}z"), Some("x y z".into()));
        assert_eq!(
            clean_text("Ünïcødé ☃ עברית"),
            Some("Ünïcødé ☃ עברית".into())
        );
    }

    #[test]
    fn keys_in_every_notation() {
        use KeyNotation::*;
        let all = |n| {
            (1..=24)
                .map(|id| key(Some(id), None, n).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all(Traditional),
            TRADITIONAL_MAJOR
                .iter()
                .chain(TRADITIONAL_MINOR.iter())
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            all(Lancelot),
            [
                "8B", "3B", "10B", "5B", "12B", "7B", "2B", "9B", "4B", "11B", "6B", "1B", "5A",
                "12A", "7A", "2A", "9A", "4A", "11A", "6A", "1A", "8A", "3A", "10A"
            ]
        );
        assert_eq!(
            all(OpenKey),
            [
                "1d", "8d", "3d", "10d", "5d", "12d", "7d", "2d", "9d", "4d", "11d", "6d", "10m",
                "5m", "12m", "7m", "2m", "9m", "4m", "11m", "6m", "1m", "8m", "3m"
            ]
        );
    }

    #[test]
    fn key_falls_back_to_stored_text() {
        use KeyNotation::*;
        assert_eq!(key(Some(0), Some("C♯m"), Traditional), Some("C#m".into()));
        assert_eq!(key(None, Some("E♭"), Lancelot), Some("Eb".into()));
        assert_eq!(
            key(Some(25), Some(" 4m (F♯m) "), OpenKey),
            Some("4m (F#m)".into())
        );
        assert_eq!(key(Some(10), Some("8A"), AsStored), Some("8A".into()));
        assert_eq!(key(Some(0), Some(""), Traditional), None);
        assert_eq!(key(None, None, Traditional), None);
    }

    #[test]
    fn desired_uses_only_managed_fields_and_drops_empty_values() {
        use crate::mixxx::Value;
        let library = Library::from_values(
            vec![crate::mixxx::Track {
                crates: vec![0, 1, 2],
                ..Default::default()
            }],
            vec!["  ".into(), "Festival".into(), "Warm\nup".into()],
            vec![
                (Column::integer("rating"), vec![Value::Integer(5)]),
                (Column::real("bpm"), vec![Value::Real(0.0)]),
                (Column::text("artist"), vec![Value::Text(String::new())]),
                (Column::text("title"), vec![Value::Text("Song".into())]),
            ],
        );
        let managed = ManagedFields::all();
        let all = managed.reader(&library).desired(0);
        assert_eq!(
            all,
            [
                ("crate", "Festival"),
                ("crate", "Warm up"),
                ("rating", "5"),
                ("title", "Song")
            ]
            .into_iter()
            .collect()
        );
        let mut names = BTreeMap::new();
        names.insert("rating".to_string(), "Stars".to_string());
        let managed = ManagedFields::new(&[FieldId::Rating], &names).unwrap();
        let some = managed.reader(&library).desired(0);
        assert_eq!(some, [("stars", "5")].into_iter().collect());
    }

    #[test]
    fn the_table_follows_the_ids_and_names_resolve() {
        for (i, def) in FIELDS.iter().enumerate() {
            assert_eq!(def.id as usize, i, "{}", def.name);
            assert_eq!(FieldId::from_name(def.name), Some(def.id));
            assert_eq!(FieldId::ALL[i], def.id);
        }
        assert_eq!(FieldId::from_name(" Crates "), Some(FieldId::Crate));
        assert_eq!(FieldId::from_name("stars"), None);
    }

    /// The inverse codec of every single-valued field gives back, through the forward codec,
    /// the value it was handed; what it refuses, the forward codec never produces.
    fn round_trip(
        field: FieldId,
        value: Option<&str>,
        options: &Options,
    ) -> Result<Option<String>, Unrepresentable> {
        let Codec::Single { forward, inverse } = field.def().codec else {
            panic!("{} is not single-valued", field.name())
        };
        let values = inverse(value, options)?;
        let Source::Columns(columns) = field.def().source else {
            unreachable!()
        };
        assert_eq!(values.len(), columns.len(), "{}", field.name());
        let raw: Vec<Raw<'_>> = values.iter().map(crate::mixxx::Value::as_raw).collect();
        Ok(forward(&raw, options))
    }

    #[test]
    fn inverse_codecs_refuse_what_mixxx_cannot_hold() {
        let o = Options::default();
        assert_eq!(
            round_trip(FieldId::Rating, Some("7"), &o),
            Err(Unrepresentable::Invalid("7".into()))
        );
        assert_eq!(
            round_trip(FieldId::Rating, Some("05"), &o),
            Err(Unrepresentable::Invalid("05".into()))
        );
        assert_eq!(
            round_trip(FieldId::Color, Some("red"), &o),
            Err(Unrepresentable::Invalid("red".into()))
        );
        assert_eq!(
            round_trip(FieldId::Color, Some("#ff0000"), &o),
            Err(Unrepresentable::Invalid("#ff0000".into()))
        );
        assert_eq!(
            round_trip(FieldId::Bpm, Some("128"), &o),
            Err(Unrepresentable::Invalid("128".into()))
        );
        assert_eq!(
            round_trip(FieldId::Bpm, Some("5000.00"), &o),
            Err(Unrepresentable::Invalid("5000.00".into()))
        );
        assert_eq!(round_trip(FieldId::Rating, None, &o), Ok(None));
        assert_eq!(round_trip(FieldId::Comment, None, &o), Ok(None));
        assert_eq!(
            round_trip(FieldId::Key, Some("F#m"), &o),
            Ok(Some("F#m".into()))
        );
        assert_eq!(
            round_trip(FieldId::Key, Some("D♯m/E♭m"), &o),
            Err(Unrepresentable::Invalid("D♯m/E♭m".into())),
            "text Mixxx cannot parse as a key is not written"
        );
        let as_stored = Options {
            key_notation: KeyNotation::AsStored,
            ..Options::default()
        };
        assert_eq!(
            round_trip(FieldId::Key, Some("8A"), &as_stored),
            Ok(Some("8A".into()))
        );
    }

    proptest! {
        #[test]
        fn inverse_then_forward_is_the_identity(
            rating in 1i64..=5,
            bpm in 1.0f64..400.0,
            color in 0i64..=0xFF_FFFF,
            key_id in 1i64..=24,
            text in "[a-zA-Z0-9 ]{0,12}",
            notation in prop::sample::select(vec![KeyNotation::Traditional, KeyNotation::OpenKey, KeyNotation::Lancelot]),
        ) {
            let o = Options { key_notation: notation, ..Options::default() };
            for (field, value) in [
                (FieldId::Rating, super::rating(Some(rating))),
                (FieldId::Bpm, super::bpm(Some(bpm))),
                (FieldId::Color, super::color(Some(color))),
                (FieldId::Key, super::key(Some(key_id), None, notation)),
                (FieldId::Comment, clean_text(&text)),
                (FieldId::Year, clean_text(&text)),
            ] {
                prop_assert_eq!(round_trip(field, value.as_deref(), &o), Ok(value.clone()), "{}", field.name());
            }
        }
    }

    #[test]
    fn managed_fields_reject_bad_and_clashing_names() {
        let mut names = BTreeMap::new();
        names.insert("year".to_string(), "mixxx year".to_string());
        assert!(ManagedFields::new(&FieldId::ALL, &names).is_err());
        names.insert("year".to_string(), "RATING".to_string());
        let err = ManagedFields::new(&FieldId::ALL, &names).unwrap_err();
        assert!(err.contains("rating and year"), "{err}");
        names.insert("year".to_string(), "mixxx-year".to_string());
        let ok = ManagedFields::new(&FieldId::ALL, &names).unwrap();
        assert!(ok.annex_names().any(|n| n == "mixxx-year"));
    }

    proptest! {
        #[test]
        fn clean_text_is_idempotent_and_has_no_controls(s in any::<String>()) {
            if let Some(c) = clean_text(&s) {
                prop_assert_eq!(clean_text(&c), Some(c.clone()));
                prop_assert!(!c.chars().any(|ch| ch.is_control()));
                prop_assert!(!c.starts_with(' ') && !c.ends_with(' ') && !c.contains("  "));
            }
        }

        #[test]
        fn key_never_panics(id in any::<Option<i64>>(), s in any::<Option<String>>()) {
            for n in [KeyNotation::Traditional, KeyNotation::OpenKey, KeyNotation::Lancelot, KeyNotation::AsStored] {
                let _ = key(id, s.as_deref(), n);
            }
        }
    }
}
