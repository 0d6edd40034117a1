//! The vocabulary shared by every stage: where a file is in the repository (`RepoPath`), which
//! git-annex key it has (`AnnexKey`), and a set of metadata fields (`FieldSet`).

pub mod nfc;

use std::fmt;
use std::path::Path;

/// A path relative to the repository root, `/`-separated, without a leading `./`.
///
/// Kept as bytes because a Linux file name need not be UTF-8, and git and Mixxx both hand us
/// bytes; display is lossy, identity is exact.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(Vec<u8>);

impl RepoPath {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        RepoPath(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as the OS sees it, relative to the repository root.
    pub fn as_path(&self) -> &Path {
        use std::os::unix::ffi::OsStrExt;
        Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }

    /// True when `self` is `dir` itself or lies below it. An empty `dir` is the repository root.
    pub fn is_within(&self, dir: &RepoPath) -> bool {
        if dir.0.is_empty() {
            return true;
        }
        self.0 == dir.0
            || (self.0.len() > dir.0.len()
                && self.0.starts_with(&dir.0)
                && self.0[dir.0.len()] == b'/')
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl serde::Serialize for RepoPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string_lossy())
    }
}

/// A git-annex key such as `SHA256E-s1234--abcd….flac`.
///
/// Keys we can address through git-annex's JSON batch protocol must be UTF-8, so a key is a
/// `String`; a file whose key is not UTF-8 is reported, not synced.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
pub struct AnnexKey(String);

impl AnnexKey {
    pub fn new(key: impl Into<String>) -> Self {
        AnnexKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AnnexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Metadata fields of one key: field name → set of values.
///
/// git-annex field names are case-insensitive, so names are stored lower-cased; values are
/// compared exactly. A field is either absent or has at least one value: an empty value set
/// is never stored, which keeps "absent" and "present" comparisons exact.
///
/// Stored as a vector sorted by name, each field's values sorted and distinct. A sync holds
/// one of these per file twice over (desired and current) for 100,000 files: nested
/// `BTreeMap`/`BTreeSet`s cost about 5 KB per file (a mostly empty B-tree node per field),
/// this layout a fraction of that, and the few fields per file make binary search cheap.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct FieldSet(Vec<(Box<str>, Values)>);

/// The values of one field: almost always exactly one, which then needs no vector.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Values {
    One(String),
    /// Two or more, sorted and distinct.
    Many(Vec<String>),
}

impl Values {
    /// From sorted, distinct values; `None` when there are none.
    fn from_sorted(mut values: Vec<String>) -> Option<Values> {
        match values.len() {
            0 => None,
            1 => values.pop().map(Values::One),
            _ => {
                values.shrink_to_fit();
                Some(Values::Many(values))
            }
        }
    }

    fn as_slice(&self) -> &[String] {
        match self {
            Values::One(v) => std::slice::from_ref(v),
            Values::Many(v) => v,
        }
    }

    fn insert(&mut self, value: String) {
        match self {
            Values::One(one) if *one == value => {}
            Values::One(one) => {
                let mut both = vec![std::mem::take(one), value];
                both.sort_unstable();
                *self = Values::Many(both);
            }
            Values::Many(many) => {
                if let Err(at) = many.binary_search(&value) {
                    many.insert(at, value);
                }
            }
        }
    }
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The canonical (case-folded) spelling of a field name.
    pub fn canonical_name(name: &str) -> String {
        Self::canonical(name).into_owned()
    }

    /// Borrows names that are canonical already (the common case: every name we write is),
    /// so lookups on a hot path do not allocate.
    fn canonical(name: &str) -> std::borrow::Cow<'_, str> {
        if name
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
        {
            std::borrow::Cow::Owned(name.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    fn position(&self, canonical: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(name, _)| name.as_ref().cmp(canonical))
    }

    /// Replaces the values of `field`; an empty iterator removes the field.
    pub fn set<I, S>(&mut self, field: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        values.sort_unstable();
        values.dedup();
        let name = Self::canonical(field);
        match (self.position(&name), Values::from_sorted(values)) {
            (Ok(i), None) => {
                self.0.remove(i);
            }
            (Ok(i), Some(values)) => self.0[i].1 = values,
            (Err(_), None) => {}
            (Err(i), Some(values)) => self.0.insert(i, (name.into(), values)),
        }
    }

    /// An empty set with room for `fields` fields.
    pub fn with_capacity(fields: usize) -> Self {
        FieldSet(Vec::with_capacity(fields))
    }

    /// Adds one value to `field`.
    pub fn insert(&mut self, field: &str, value: impl Into<String>) {
        let name = Self::canonical(field);
        let value = value.into();
        // Sets are mostly built in name order (desired fields, decoded caches): appending
        // then needs one comparison instead of a search.
        let position = match self.0.last() {
            None => Err(0),
            Some((last, _)) => match last.as_ref().cmp(name.as_ref()) {
                std::cmp::Ordering::Less => Err(self.0.len()),
                std::cmp::Ordering::Equal => Ok(self.0.len() - 1),
                std::cmp::Ordering::Greater => self.position(&name),
            },
        };
        match position {
            Ok(i) => self.0[i].1.insert(value),
            Err(i) => self.0.insert(i, (name.into(), Values::One(value))),
        }
    }

    pub fn remove(&mut self, field: &str) {
        if let Ok(i) = self.position(&Self::canonical(field)) {
            self.0.remove(i);
        }
    }

    /// The values of `field` (sorted, distinct), if it is present.
    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.position(&Self::canonical(field))
            .ok()
            .map(|i| self.0[i].1.as_slice())
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Releases spare capacity once a set is complete (sets are built field by field and
    /// then kept, 100,000 of them, for the rest of a sync).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl serde::Serialize for FieldSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, values) in &self.0 {
            map.serialize_entry(name, values.as_slice())?;
        }
        map.end()
    }
}

impl<S: Into<String>, V: Into<String>> FromIterator<(S, V)> for FieldSet {
    fn from_iter<T: IntoIterator<Item = (S, V)>>(iter: T) -> Self {
        let mut set = FieldSet::new();
        for (field, value) in iter {
            set.insert(&field.into(), value);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_path_within() {
        let p = RepoPath::from_bytes("a/b/c.flac");
        assert!(p.is_within(&RepoPath::from_bytes("a")));
        assert!(p.is_within(&RepoPath::from_bytes("a/b")));
        assert!(p.is_within(&RepoPath::from_bytes("a/b/c.flac")));
        assert!(p.is_within(&RepoPath::from_bytes("")));
        assert!(!p.is_within(&RepoPath::from_bytes("a/b/c")));
        assert!(!p.is_within(&RepoPath::from_bytes("a/bb")));
    }

    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Clone)]
    enum Op {
        Set(String, Vec<String>),
        Insert(String, String),
        Remove(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        let name = prop::sample::select(vec!["rating", "Rating", "crate", "CRATE", "é", "É", "z"])
            .prop_map(String::from);
        let value = "[a-c]{0,2}";
        prop_oneof![
            (name.clone(), prop::collection::vec(value, 0..4)).prop_map(|(n, v)| Op::Set(n, v)),
            (name.clone(), value).prop_map(|(n, v)| Op::Insert(n, v)),
            name.prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The compact layout behaves like the obvious map of sets.
        #[test]
        fn field_set_matches_a_map_of_sets(ops in prop::collection::vec(op(), 0..40)) {
            let mut model: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut set = FieldSet::new();
            for op in ops {
                match op {
                    Op::Set(n, v) => {
                        let v: BTreeSet<String> = v.into_iter().collect();
                        if v.is_empty() { model.remove(&n.to_lowercase()); } else { model.insert(n.to_lowercase(), v.clone()); }
                        set.set(&n, v);
                    }
                    Op::Insert(n, v) => {
                        model.entry(n.to_lowercase()).or_default().insert(v.clone());
                        set.insert(&n, v);
                    }
                    Op::Remove(n) => {
                        model.remove(&n.to_lowercase());
                        set.remove(&n);
                    }
                }
            }
            let got: Vec<(String, Vec<String>)> =
                set.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
            let want: Vec<(String, Vec<String>)> =
                model.into_iter().map(|(n, v)| (n, v.into_iter().collect())).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn field_names_fold_case_and_empty_sets_vanish() {
        let mut f = FieldSet::new();
        f.set("Rating", ["5"]);
        assert_eq!(f.get("rating").unwrap().len(), 1);
        f.set("RATING", Vec::<String>::new());
        assert!(f.is_empty());
    }
}
