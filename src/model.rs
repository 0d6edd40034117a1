//! The vocabulary shared by every stage: where a file is in the repository (`RepoPath`), which
//! git-annex key it has (`AnnexKey`), and a set of metadata fields (`FieldSet`).

use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Clone, Default, PartialEq, Eq, Debug, serde::Serialize)]
pub struct FieldSet(BTreeMap<String, BTreeSet<String>>);

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
        if name.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            std::borrow::Cow::Owned(name.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    /// Replaces the values of `field`; an empty iterator removes the field.
    pub fn set<I, S>(&mut self, field: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: BTreeSet<String> = values.into_iter().map(Into::into).collect();
        if values.is_empty() {
            self.0.remove(Self::canonical(field).as_ref());
        } else {
            self.0.insert(Self::canonical_name(field), values);
        }
    }

    /// Adds one value to `field`.
    pub fn insert(&mut self, field: &str, value: impl Into<String>) {
        let name = Self::canonical(field);
        match self.0.get_mut(name.as_ref()) {
            Some(values) => {
                values.insert(value.into());
            }
            None => {
                self.0
                    .insert(name.into_owned(), BTreeSet::from([value.into()]));
            }
        }
    }

    pub fn remove(&mut self, field: &str) {
        self.0.remove(Self::canonical(field).as_ref());
    }

    /// The values of `field`, if it is present.
    pub fn get(&self, field: &str) -> Option<&BTreeSet<String>> {
        self.0.get(Self::canonical(field).as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
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

    #[test]
    fn field_names_fold_case_and_empty_sets_vanish() {
        let mut f = FieldSet::new();
        f.set("Rating", ["5"]);
        assert_eq!(f.get("rating").unwrap().len(), 1);
        f.set("RATING", Vec::<String>::new());
        assert!(f.is_empty());
    }
}
