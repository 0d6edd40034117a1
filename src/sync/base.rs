//! The base of the three-way sync: per file and managed field, the values this clone's Mixxx
//! and the repository last agreed on. Kept per clone and per Mixxx database in
//! `<git common dir>/music-commander/base-<hash of the database path>`.
//!
//! Why a local file and not the git-annex branch: the base is this machine's memory, it
//! changes on runs that write nothing (a no-op sync that sees both sides agree moves it
//! forward, and must make no commit), and other clones have no use for it.
//!
//! Why it is safe to lose: without an entry, the sync assumes no base, which never overwrites
//! a value the repository holds (see [`super::merge`]); a damaged, foreign or missing file
//! reads as empty. Why it is safe to be stale: it is written only after the run's git-annex
//! writes are committed, and a stale base can only make a side look changed where the other
//! side already has the same value (converged) — it can never make an incoming change look
//! like a local edit, because an entry only ever holds values both sides held at once.
//!
//! Layout: magic, format, then entries sorted by key — key, then per managed field (by
//! git-annex name) its known values; a field without an entry has no known base. A checksum
//! over everything ends the file. The file is read whole and indexed, and entries are decoded
//! only for files whose two sides differ, so a no-op sync of 100,000 files decodes none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::annex::cache::{Decoder, Encoder, checksum};
use crate::model::{AnnexKey, FieldSet};
use crate::sync::fields::ManagedFields;
use crate::sync::merge::Base;

const MAGIC: &[u8; 8] = b"mc-base\0";
/// The layout of this file. Unlike the caches, the base is state, not a shortcut: a new build
/// must keep reading it, so it carries a format number and no code fingerprint.
const FORMAT: u32 = 1;
const CHECKSUM_LEN: usize = 8;

/// The agreed values of one file: `(git-annex field name, values)` sorted by name; a field
/// listed with no values was agreed to be empty, a field not listed has no known base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreed(Vec<(String, Vec<String>)>);

impl Agreed {
    pub fn new() -> Agreed {
        Agreed::default()
    }

    /// Records the agreed values of `field` (sorted, distinct).
    pub fn set(&mut self, field: &str, values: Vec<String>) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(field)) {
            Ok(i) => self.0[i].1 = values,
            Err(i) => self.0.insert(i, (field.to_string(), values)),
        }
    }

    /// The base of `field`.
    pub fn get(&self, field: &str) -> Base<'_> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(field))
            .ok()
            .map(|i| self.0[i].1.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every managed field known, with the values `fields` holds (none: agreed empty).
    pub fn from_fields(fields: &FieldSet, managed: &ManagedFields) -> Agreed {
        Agreed(
            managed
                .iter_by_name()
                .map(|(_, name)| (name.to_string(), fields.get(name).unwrap_or(&[]).to_vec()))
                .collect(),
        )
    }

    fn encode(&self, out: &mut Encoder) {
        encode_entry(
            out,
            self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            self.0.len(),
        );
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Agreed> {
        let fields = d.count(8)?;
        let mut out = Vec::with_capacity(fields);
        for _ in 0..fields {
            let name = d.string()?.to_string();
            let n = d.count(4)?;
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                values.push(d.string()?.to_string());
            }
            out.push((name, values));
        }
        Some(Agreed(out))
    }
}

/// How the base file was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid file.
    Valid,
    /// No file: this clone never synced with this Mixxx database (or the state was deleted).
    Missing,
    /// A file that does not read back (truncated, damaged, another format): ignored.
    Unreadable,
}

/// The stored base of every file, indexed but not decoded.
pub struct BaseStore {
    path: PathBuf,
    found: Found,
    body: Vec<u8>,
    /// Key → where its entry's fields start and end in `body`.
    index: HashMap<AnnexKey, (u32, u32)>,
}

impl BaseStore {
    /// The base file of this clone (`common_dir`) for the Mixxx database at `mixxx_db`.
    pub fn path(common_dir: &Path, mixxx_db: &Path) -> PathBuf {
        let canonical = std::fs::canonicalize(mixxx_db).unwrap_or_else(|_| mixxx_db.to_path_buf());
        let hash = checksum(canonical.as_os_str().as_encoded_bytes());
        common_dir
            .join("music-commander")
            .join(format!("base-{hash:016x}"))
    }

    /// Reads the base at `path`. Never fails: anything unreadable is an empty base.
    pub fn open(path: PathBuf) -> BaseStore {
        let mut store = BaseStore {
            path,
            found: Found::Missing,
            body: Vec::new(),
            index: HashMap::new(),
        };
        let bytes = match std::fs::read(&store.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return store,
            Err(_) => {
                store.found = Found::Unreadable;
                return store;
            }
        };
        match index(bytes) {
            Some((body, index)) => {
                store.found = Found::Valid;
                store.body = body;
                store.index = index;
            }
            None => store.found = Found::Unreadable,
        }
        store
    }

    pub fn found(&self) -> Found {
        self.found
    }

    pub fn file(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The stored base of `key`; `None` when there is none (every field unknown).
    pub fn get(&self, key: &AnnexKey) -> Option<Agreed> {
        let &(start, end) = self.index.get(key)?;
        Agreed::decode(&mut Decoder::new(&self.body[start as usize..end as usize]))
    }

    /// True when the stored base of `key` is exactly `agreed`, compared without decoding.
    pub(crate) fn holds(&self, key: &AnnexKey, agreed: &Agreed, scratch: &mut Encoder) -> bool {
        let Some(&(start, end)) = self.index.get(key) else {
            return false;
        };
        scratch.clear();
        agreed.encode(scratch);
        scratch.as_slice() == &self.body[start as usize..end as usize]
    }

    /// True when the stored base of `key` is exactly what [`Agreed::from_fields`] would make
    /// of `fields`: the check a no-op sync makes for every file, without allocating.
    pub(crate) fn holds_fields(
        &self,
        key: &AnnexKey,
        fields: &FieldSet,
        managed: &ManagedFields,
        scratch: &mut Encoder,
    ) -> bool {
        let Some(&(start, end)) = self.index.get(key) else {
            return false;
        };
        scratch.clear();
        let n = managed.iter_by_name().count();
        encode_entry(
            scratch,
            managed
                .iter_by_name()
                .map(|(_, name)| (name, fields.get(name).unwrap_or(&[]))),
            n,
        );
        scratch.as_slice() == &self.body[start as usize..end as usize]
    }

    /// Writes a new base: `updates` replace (or add) entries, other stored entries are kept
    /// when `keep` says so. Replaces the file atomically (temp file + rename), so a crash
    /// leaves the old base or the new one.
    pub fn write(
        &self,
        updates: &impl Updates,
        keep: impl Fn(&AnnexKey) -> bool,
    ) -> std::io::Result<()> {
        let mut keys: Vec<&AnnexKey> = updates
            .keys()
            .chain(
                self.index
                    .keys()
                    .filter(|k| !updates.contains_key(k) && keep(k)),
            )
            .collect();
        keys.sort_unstable();
        let mut out = Encoder::default();
        out.raw(MAGIC);
        out.u32(FORMAT);
        out.len(keys.len());
        for key in keys {
            out.bytes(key.as_str().as_bytes());
            let mut entry = Encoder::default();
            match updates.get(key) {
                Some(agreed) => agreed.encode(&mut entry),
                None => {
                    let (start, end) = self.index[key];
                    entry.raw(&self.body[start as usize..end as usize]);
                }
            }
            out.bytes(entry.as_slice());
        }
        let sum = checksum(out.as_slice());
        out.raw(&sum.to_le_bytes());

        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, out.as_slice())?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The entries a [`BaseStore::write`] replaces or adds: a map, or entries made one at a time
/// as they are written (a first sync's 100,000 entries, each naming every managed field,
/// held at once were hundreds of MiB).
pub trait Updates {
    fn keys(&self) -> Box<dyn Iterator<Item = &AnnexKey> + '_>;
    fn contains_key(&self, key: &AnnexKey) -> bool;
    fn get(&self, key: &AnnexKey) -> Option<std::borrow::Cow<'_, Agreed>>;
}

impl Updates for HashMap<AnnexKey, Agreed> {
    fn keys(&self) -> Box<dyn Iterator<Item = &AnnexKey> + '_> {
        Box::new(HashMap::keys(self))
    }

    fn contains_key(&self, key: &AnnexKey) -> bool {
        HashMap::contains_key(self, key)
    }

    fn get(&self, key: &AnnexKey) -> Option<std::borrow::Cow<'_, Agreed>> {
        HashMap::get(self, key).map(std::borrow::Cow::Borrowed)
    }
}

/// The base, read from its file the first time a file's base is asked for. A sync that
/// finds every file unchanged and its [`Stamp`] current never reads it.
pub struct LazyBase {
    path: PathBuf,
    store: OnceLock<BaseStore>,
}

impl LazyBase {
    pub fn new(path: PathBuf) -> LazyBase {
        LazyBase {
            path,
            store: OnceLock::new(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> &BaseStore {
        self.store
            .get_or_init(|| BaseStore::open(self.path.clone()))
    }
}

const STAMP_MAGIC: &[u8; 8] = b"mc-seen\0";

/// What a settling run saw: the Mixxx database's change marker, the repository's metadata
/// state, every key the tracks map to, the managed fields and options, and the base file as
/// that run left it. When a run sees the same stamp, every file it finds unchanged was found
/// unchanged by that run too, which stored its agreed values in the base: checking each file
/// against the base again cannot move it, so the run skips that check (and, with nothing
/// changed, never reads the base). A stamp wrongly taken as equal costs nothing but a base
/// that moves later: a stale base only ever holds values both sides held at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp(Vec<u8>);

impl Stamp {
    /// `parts` are what the run read, in a fixed order.
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Stamp {
        let mut bytes = Vec::new();
        for part in parts {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        Stamp(bytes)
    }

    /// Where the stamp of `base_file` is kept.
    fn path(base_file: &Path) -> PathBuf {
        let mut name = base_file.as_os_str().to_os_string();
        name.push(".seen");
        PathBuf::from(name)
    }

    /// Whether this stamp is stored for `base_file` as it is now (any rewrite of the base
    /// file since the stamp was stored makes it another stamp).
    pub fn is_stored(&self, base_file: &Path) -> bool {
        std::fs::read(Self::path(base_file)).is_ok_and(|bytes| bytes == self.encode(base_file))
    }

    /// Stores this stamp for `base_file` as it is now (temp file + rename), unless it is.
    pub fn store(&self, base_file: &Path) -> std::io::Result<()> {
        if self.is_stored(base_file) {
            return Ok(());
        }
        let path = Self::path(base_file);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, &self.encode(base_file))?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    fn encode(&self, base_file: &Path) -> Vec<u8> {
        let mut bytes = self.0.clone();
        bytes.extend_from_slice(&crate::fingerprint::file(base_file));
        let mut out = STAMP_MAGIC.to_vec();
        out.extend_from_slice(&checksum(&bytes).to_le_bytes());
        out
    }
}

/// One entry's fields, `(name, values)` in name order: the same bytes whether they come from
/// an [`Agreed`] or straight from a file's fields.
fn encode_entry<'a>(
    out: &mut Encoder,
    fields: impl Iterator<Item = (&'a str, &'a [String])>,
    n: usize,
) {
    out.len(n);
    for (name, values) in fields {
        out.bytes(name.as_bytes());
        out.len(values.len());
        for value in values {
            out.bytes(value.as_bytes());
        }
    }
}

type Index = HashMap<AnnexKey, (u32, u32)>;

/// Checks the file and indexes its entries; the body keeps the file's bytes.
fn index(bytes: Vec<u8>) -> Option<(Vec<u8>, Index)> {
    if bytes.len() < MAGIC.len() + 4 + CHECKSUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if checksum(content).to_le_bytes() != sum {
        return None;
    }
    let mut d = Decoder::new(&content[MAGIC.len()..]);
    if d.u32()? != FORMAT {
        return None;
    }
    let entries = d.count(8)?;
    let mut index = HashMap::with_capacity(entries);
    for _ in 0..entries {
        let key = d.string()?;
        let fields = d.bytes()?;
        // Offsets into `bytes`: the entry's slice is a sub-slice of it.
        let start = fields.as_ptr() as usize - bytes.as_ptr() as usize;
        let end = start + fields.len();
        index.insert(
            AnnexKey::new(key),
            (u32::try_from(start).ok()?, u32::try_from(end).ok()?),
        );
    }
    d.is_empty().then_some((bytes, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(fields: &[(&str, &[&str])]) -> Agreed {
        let mut a = Agreed::new();
        for (name, values) in fields {
            a.set(name, values.iter().map(|v| v.to_string()).collect());
        }
        a
    }

    #[test]
    fn round_trip_keep_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("music-commander/base-x");
        let store = BaseStore::open(path.clone());
        assert_eq!(store.found(), Found::Missing);
        let (a, b, c) = (
            AnnexKey::new("K-a"),
            AnnexKey::new("K-b"),
            AnnexKey::new("K-c"),
        );
        let first = agreed(&[("rating", &["5"]), ("crate", &["A", "B"]), ("comment", &[])]);
        let updates = HashMap::from([(a.clone(), first.clone()), (b.clone(), Agreed::new())]);
        store.write(&updates, |_| true).unwrap();

        let store = BaseStore::open(path.clone());
        assert_eq!(store.found(), Found::Valid);
        assert_eq!(store.len(), 2);
        let got = store.get(&a).unwrap();
        assert_eq!(got, first);
        assert_eq!(got.get("comment"), Some(&[][..]));
        assert_eq!(got.get("bpm"), None);
        assert_eq!(store.get(&c), None);
        let mut scratch = Encoder::default();
        assert!(store.holds(&a, &first, &mut scratch));
        assert!(!store.holds(&a, &Agreed::new(), &mut scratch));
        assert!(!store.holds(&c, &Agreed::new(), &mut scratch));

        // Replace a, add c, drop b.
        let second = agreed(&[("rating", &["4"])]);
        let updates = HashMap::from([(a.clone(), second.clone()), (c.clone(), first.clone())]);
        store.write(&updates, |k| *k != b).unwrap();
        let store = BaseStore::open(path);
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&a), Some(second));
        assert_eq!(store.get(&b), None);
        assert_eq!(store.get(&c), Some(first));
    }

    #[test]
    fn damage_reads_as_no_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        let store = BaseStore::open(path.clone());
        let updates = HashMap::from([(AnnexKey::new("K"), agreed(&[("rating", &["5"])]))]);
        store.write(&updates, |_| true).unwrap();
        let good = std::fs::read(&path).unwrap();
        for cut in [0, 1, 8, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            let store = BaseStore::open(path.clone());
            assert_eq!(store.found(), Found::Unreadable, "cut at {cut}");
            assert!(store.is_empty());
        }
        for flip in 0..good.len() {
            let mut bad = good.clone();
            bad[flip] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(
                BaseStore::open(path.clone()).found(),
                Found::Unreadable,
                "byte {flip}"
            );
        }
    }

    #[test]
    fn one_base_per_database() {
        let common = Path::new("/r/.git");
        assert_ne!(
            BaseStore::path(common, Path::new("/a/mixxxdb.sqlite")),
            BaseStore::path(common, Path::new("/b/mixxxdb.sqlite"))
        );
    }
}
