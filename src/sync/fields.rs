//! From a Mixxx track to the git-annex fields it should have: pure functions.
//!
//! The mapping is the README's field table. Every value is normalised to one canonical string
//! so that comparing desired against current metadata is exact: git-annex compares values as
//! byte strings (`128` ≠ `128.00`), and a changed spelling would otherwise rewrite every file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::mixxx::{Library, Track};
use crate::model::FieldSet;

/// A Mixxx field we know how to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MixxxField {
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
}

impl MixxxField {
    pub const ALL: [MixxxField; 12] = [
        MixxxField::Rating,
        MixxxField::Bpm,
        MixxxField::Color,
        MixxxField::Key,
        MixxxField::Artist,
        MixxxField::Title,
        MixxxField::Album,
        MixxxField::Genre,
        MixxxField::Year,
        MixxxField::TrackNumber,
        MixxxField::Comment,
        MixxxField::Crate,
    ];

    /// The name used in the config and, unless renamed, as the git-annex field name.
    pub fn name(self) -> &'static str {
        match self {
            MixxxField::Rating => "rating",
            MixxxField::Bpm => "bpm",
            MixxxField::Color => "color",
            MixxxField::Key => "key",
            MixxxField::Artist => "artist",
            MixxxField::Title => "title",
            MixxxField::Album => "album",
            MixxxField::Genre => "genre",
            MixxxField::Year => "year",
            MixxxField::TrackNumber => "tracknumber",
            MixxxField::Comment => "comment",
            MixxxField::Crate => "crate",
        }
    }

    pub fn from_name(name: &str) -> Option<MixxxField> {
        let name = name.trim().to_ascii_lowercase();
        if name == "crates" {
            return Some(MixxxField::Crate);
        }
        MixxxField::ALL.into_iter().find(|f| f.name() == name)
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFields {
    /// In table order, the order changes are shown in.
    fields: Vec<(MixxxField, String)>,
    /// Indices into `fields`, sorted by git-annex name: the order a `FieldSet` keeps, so
    /// desired sets are built by appending and compared by one merge.
    by_name: Vec<usize>,
    pub key_notation: KeyNotation,
}

impl ManagedFields {
    /// Validates git-annex names now (a rejected name would kill git-annex's batch process
    /// mid-run) and rejects two fields sharing one git-annex name (names are case-insensitive
    /// in git-annex, so `Rating` and `rating` are one field).
    pub fn new(
        selected: &[MixxxField],
        names: &BTreeMap<String, String>,
    ) -> Result<ManagedFields, String> {
        let mut fields: Vec<(MixxxField, String)> = Vec::new();
        for &field in selected {
            if fields.iter().any(|(f, _)| *f == field) {
                continue;
            }
            let renamed = names
                .iter()
                .find(|(from, _)| MixxxField::from_name(from) == Some(field))
                .map(|(_, to)| to.trim().to_string());
            let annex_name = FieldSet::canonical_name(&renamed.unwrap_or(field.name().into()));
            crate::annex::writer::validate_field_name(&annex_name).map_err(|why| {
                format!(
                    "git-annex field name {annex_name:?} for {}: {why}",
                    field.name()
                )
            })?;
            if let Some((other, _)) = fields.iter().find(|(_, n)| *n == annex_name) {
                return Err(format!(
                    "{} and {} would both be stored as git-annex field {annex_name:?}",
                    other.name(),
                    field.name()
                ));
            }
            fields.push((field, annex_name));
        }
        let mut by_name: Vec<usize> = (0..fields.len()).collect();
        by_name.sort_by(|&a, &b| fields[a].1.cmp(&fields[b].1));
        Ok(ManagedFields {
            fields,
            by_name,
            key_notation: KeyNotation::default(),
        })
    }

    /// All twelve fields under their own names.
    pub fn all() -> ManagedFields {
        ManagedFields::new(&MixxxField::ALL, &BTreeMap::new())
            .expect("the built-in names are valid")
    }

    pub fn with_key_notation(mut self, notation: KeyNotation) -> Self {
        self.key_notation = notation;
        self
    }

    /// (Mixxx field, git-annex name) pairs in table order.
    pub fn iter(&self) -> impl Iterator<Item = (MixxxField, &str)> {
        self.fields.iter().map(|(f, n)| (*f, n.as_str()))
    }

    /// (Mixxx field, git-annex name) pairs in git-annex name order.
    pub fn iter_by_name(&self) -> impl Iterator<Item = (MixxxField, &str)> {
        self.by_name
            .iter()
            .map(|&i| (self.fields[i].0, self.fields[i].1.as_str()))
    }

    /// Where a git-annex name stands in table order (for showing changes in that order).
    pub fn table_position(&self, annex_name: &str) -> usize {
        self.fields
            .iter()
            .position(|(_, n)| n == annex_name)
            .unwrap_or(usize::MAX)
    }

    /// The git-annex names, in table order.
    pub fn annex_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(_, n)| n.as_str())
    }

    /// The fields `track` should have in git-annex: only managed fields, only non-empty ones.
    pub fn desired(&self, track: &Track, library: &Library) -> FieldSet {
        let mut set = FieldSet::with_capacity(self.fields.len());
        for (field, name) in self.iter_by_name() {
            match field {
                MixxxField::Crate => {
                    set.set(
                        name,
                        track
                            .crates
                            .iter()
                            .filter_map(|&id| clean_text(library.crate_name(id))),
                    );
                }
                _ => {
                    if let Some(value) = self.scalar(field, track) {
                        set.insert(name, value);
                    }
                }
            }
        }
        set
    }

    fn scalar(&self, field: MixxxField, t: &Track) -> Option<String> {
        let text = |v: &Option<String>| v.as_deref().and_then(clean_text);
        match field {
            MixxxField::Rating => rating(t.rating),
            MixxxField::Bpm => bpm(t.bpm),
            MixxxField::Color => color(t.color),
            MixxxField::Key => key(t.key_id, t.key.as_deref(), self.key_notation),
            MixxxField::Artist => text(&t.artist),
            MixxxField::Title => text(&t.title),
            MixxxField::Album => text(&t.album),
            MixxxField::Genre => text(&t.genre),
            MixxxField::Year => text(&t.year),
            MixxxField::TrackNumber => text(&t.tracknumber),
            MixxxField::Comment => text(&t.comment),
            MixxxField::Crate => None,
        }
    }
}

/// `"1"`..`"5"`; 0 (unrated), NULL and out-of-range values are absent.
pub fn rating(rating: Option<i64>) -> Option<String> {
    rating
        .filter(|r| (1..=5).contains(r))
        .map(|r| r.to_string())
}

/// Two decimals (`"128.00"`), so git-annex's numeric matchers and views see one spelling.
/// 0, NULL, negative and non-finite values mean "unknown".
pub fn bpm(bpm: Option<f64>) -> Option<String> {
    bpm.filter(|b| b.is_finite() && *b > 0.0)
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
        let library = Library {
            tracks: vec![],
            crate_names: vec!["  ".into(), "Festival".into(), "Warm\nup".into()],
        };
        let track = Track {
            rating: Some(5),
            bpm: Some(0.0),
            artist: Some("".into()),
            title: Some("Song".into()),
            crates: vec![0, 1, 2],
            ..Track::default()
        };
        let all = ManagedFields::all().desired(&track, &library);
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
        let some = ManagedFields::new(&[MixxxField::Rating], &names)
            .unwrap()
            .desired(&track, &library);
        assert_eq!(some, [("stars", "5")].into_iter().collect());
    }

    #[test]
    fn managed_fields_reject_bad_and_clashing_names() {
        let mut names = BTreeMap::new();
        names.insert("year".to_string(), "mixxx year".to_string());
        assert!(ManagedFields::new(&MixxxField::ALL, &names).is_err());
        names.insert("year".to_string(), "RATING".to_string());
        let err = ManagedFields::new(&MixxxField::ALL, &names).unwrap_err();
        assert!(err.contains("rating and year"), "{err}");
        names.insert("year".to_string(), "mixxx-year".to_string());
        let ok = ManagedFields::new(&MixxxField::ALL, &names).unwrap();
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
