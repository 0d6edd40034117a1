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
//! Layout (format 2): magic, format, then a header — the field names (in name order) and the
//! sets of known fields the entries use (almost every entry shares one: the managed fields of
//! the run that wrote it) — then the entries sorted by key: key, and a body of the entry's
//! set and only its non-empty fields, as (position in the set, values). A field of the set
//! that is not listed was agreed empty; a field outside the set has no known base. Lengths
//! are LEB128, spelled one way only, so equal entries are equal bytes. A checksum over
//! everything ends the file. Format 1 (every entry names every field, u32 lengths, ~1 KiB an
//! entry) is still read — the base is state, not a cache — and rewritten as format 2 by the
//! next write.
//!
//! The file is read whole and indexed by entry offsets in a hash table (about 5 bytes an
//! entry, nothing allocated per entry); entries are decoded only for files whose two sides
//! differ, and unchanged files are checked by comparing encoded bytes. A write streams the
//! new file into a temp file, copying kept entries' bytes.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;

use crate::annex::cache::{Encoder, checksum};
use crate::model::{AnnexKey, FieldSet};
use crate::sync::fields::ManagedFields;
use crate::sync::merge::Base;

const MAGIC: &[u8; 8] = b"mc-base\0";
/// The layout of this file. Unlike the caches, the base is state, not a shortcut: a new build
/// must keep reading it, so it carries a format number and no code fingerprint.
const FORMAT: u32 = 2;
/// The first layout, still read.
const FORMAT_1: u32 = 1;
const HEADER_LEN: usize = MAGIC.len() + 4;
const CHECKSUM_LEN: usize = 8;

/// The agreed values of one file: `(git-annex field name, values)` sorted by name; a field
/// listed with no values was agreed to be empty, a field not listed has no known base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreed(Vec<(Arc<str>, Vec<String>)>);

impl Agreed {
    pub fn new() -> Agreed {
        Agreed::default()
    }

    /// Records the agreed values of `field` (sorted, distinct).
    pub fn set(&mut self, field: &str, values: Vec<String>) {
        match self.0.binary_search_by(|(n, _)| (**n).cmp(field)) {
            Ok(i) => self.0[i].1 = values,
            Err(i) => self.0.insert(i, (field.into(), values)),
        }
    }

    /// Records `field` after every field recorded so far, whose names all sort before it:
    /// [`Agreed::set`] without the search, for a base made field by field in name order
    /// (100,000 files × every managed field after a first sync).
    pub fn push(&mut self, field: &Arc<str>, values: Vec<String>) {
        debug_assert!(self.0.last().is_none_or(|(n, _)| n < field));
        self.0.push((field.clone(), values));
    }

    /// The base of `field`.
    pub fn get(&self, field: &str) -> Base<'_> {
        self.0
            .binary_search_by(|(n, _)| (**n).cmp(field))
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
                .iter_by_name_shared()
                .map(|(_, name)| (name.clone(), fields.get(name).unwrap_or(&[]).to_vec()))
                .collect(),
        )
    }

    fn names(&self) -> impl Clone + Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
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

/// How the entries of the file read are laid out.
enum Layout {
    V1,
    V2(Table),
}

/// Format 2's header: the field names, and the sets of known fields entries refer to.
#[derive(Default)]
struct Table {
    /// Sorted, distinct.
    names: Vec<String>,
    /// Per set, indices into `names`, ascending (so in name order).
    sets: Vec<Vec<u32>>,
}

impl Table {
    fn set_names(&self, set: usize) -> impl Clone + Iterator<Item = &str> {
        self.sets[set]
            .iter()
            .map(|&i| self.names[i as usize].as_str())
    }

    /// The set of exactly `names` (in name order), if the file has one.
    fn find_set<'a>(&self, names: impl Clone + Iterator<Item = &'a str>) -> Option<usize> {
        (0..self.sets.len()).find(|&s| self.set_names(s).eq(names.clone()))
    }
}

/// The stored base of every file, indexed but not decoded.
pub struct BaseStore {
    path: PathBuf,
    found: Found,
    /// The whole file.
    bytes: Vec<u8>,
    layout: Layout,
    /// Where each entry starts in `bytes`, by key.
    slots: Slots,
    /// Where the first entry starts (the others follow it, in key order).
    first: usize,
    entries: usize,
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
            bytes: Vec::new(),
            layout: Layout::V2(Table::default()),
            slots: Slots::default(),
            first: 0,
            entries: 0,
        };
        let bytes = match std::fs::read(&store.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return store,
            Err(_) => {
                store.found = Found::Unreadable;
                return store;
            }
        };
        match parse(&bytes) {
            Some((layout, index)) => {
                store.found = Found::Valid;
                store.bytes = bytes;
                store.layout = layout;
                store.slots = index.slots;
                store.first = index.first;
                store.entries = index.entries;
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
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn v1(&self) -> bool {
        matches!(self.layout, Layout::V1)
    }

    /// The key and body of the entry at `at` (checked when the file was read), and where the
    /// next one starts.
    fn entry_at(&self, at: usize) -> (&[u8], &[u8], usize) {
        let mut rest = &self.bytes[at..];
        let v1 = self.v1();
        let key = take_bytes(v1, &mut rest).unwrap_or_default();
        let body = take_bytes(v1, &mut rest).unwrap_or_default();
        (key, body, self.bytes.len() - rest.len())
    }

    /// Every entry's key and body, in key order.
    fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut at = self.first;
        (0..self.entries).map(move |_| {
            let (key, body, next) = self.entry_at(at);
            at = next;
            (key, body)
        })
    }

    /// The body of `key`'s entry.
    fn find(&self, key: &AnnexKey) -> Option<&[u8]> {
        let key = key.as_str().as_bytes();
        let at = self.slots.find(key, |at| self.entry_at(at as usize).0)?;
        Some(self.entry_at(at as usize).1)
    }

    /// The stored base of `key`; `None` when there is none (every field unknown).
    pub fn get(&self, key: &AnnexKey) -> Option<Agreed> {
        let body = self.find(key)?;
        let fields = match &self.layout {
            Layout::V1 => decode_v1(body)?
                .into_iter()
                .map(|(name, values)| {
                    let values = values.into_iter().map(str::to_string).collect();
                    (Arc::from(name), values)
                })
                .collect(),
            Layout::V2(table) => decode_v2(table, body)?,
        };
        Some(Agreed(fields))
    }

    /// True when the stored base of `key` is exactly `agreed`, compared without decoding.
    pub(crate) fn holds(&self, key: &AnnexKey, agreed: &Agreed, scratch: &mut Encoder) -> bool {
        let Some(body) = self.find(key) else {
            return false;
        };
        scratch.clear();
        let fields = agreed.0.iter().map(|(n, v)| (&**n, v.as_slice()));
        match &self.layout {
            Layout::V1 => encode_v1(scratch, fields, agreed.0.len()),
            Layout::V2(table) => {
                let Some(set) = table.find_set(agreed.names()) else {
                    return false;
                };
                put_varint(scratch, set as u64);
                for (at, (_, values)) in fields.enumerate() {
                    encode_field(scratch, at, values);
                }
            }
        }
        scratch.as_slice() == body
    }

    /// True when the stored base of `key` is exactly what [`Agreed::from_fields`] would make
    /// of `fields`: the check a sync makes for every unchanged file, without allocating.
    pub(crate) fn holds_fields(
        &self,
        key: &AnnexKey,
        fields: &FieldSet,
        managed: &ManagedFields,
        scratch: &mut Encoder,
    ) -> bool {
        let Some(mut body) = self.find(key) else {
            return false;
        };
        scratch.clear();
        let values_of = |name: &str| fields.get(name).unwrap_or(&[]);
        match &self.layout {
            Layout::V1 => {
                let n = managed.iter_by_name().count();
                let fields = managed
                    .iter_by_name()
                    .map(|(_, name)| (name, values_of(name)));
                encode_v1(scratch, fields, n);
            }
            Layout::V2(table) => {
                // The entry's set must be exactly the managed fields...
                let Some(set) = varint(&mut body) else {
                    return false;
                };
                let managed_names = managed.iter_by_name().map(|(_, name)| name);
                if !table.set_names(set as usize).eq(managed_names) {
                    return false;
                }
                // ...and its fields what `fields` holds for them. Both are in name order, so
                // one merge finds each field's values (what `values_of` would, without a
                // search per field).
                let mut held = fields.iter().peekable();
                for (at, (_, name)) in managed.iter_by_name().enumerate() {
                    while held.next_if(|(n, _)| *n < name).is_some() {}
                    if let Some((_, values)) = held.next_if(|(n, _)| *n == name) {
                        encode_field(scratch, at, values);
                    }
                }
            }
        }
        scratch.as_slice() == body
    }

    /// Writes a new base: `updates` replace (or add) entries, other stored entries are kept
    /// when `keep` says so. Streams into a temp file that then replaces the file (rename), so
    /// a crash leaves the old base or the new one; kept entries are copied as they are stored
    /// (format 1 entries are re-encoded).
    pub fn write(
        &self,
        updates: &impl Updates,
        keep: impl Fn(&AnnexKey) -> bool,
    ) -> std::io::Result<()> {
        // Entries are made one at a time when asked for (`Updates`), twice: once for the sets
        // the header lists, once to be written; never all held at once.
        let mut new: Vec<&AnnexKey> = updates.keys().collect();
        new.sort_unstable();

        // Which stored entries stay (not replaced, and kept), and the sets every entry of the
        // new file uses.
        let mut sets = Sets::default();
        let new_sets: Vec<usize> = new
            .iter()
            .map(|k| sets.id(updates.get(k).expect("a listed key has an entry").names()))
            .collect();
        let mut kept = vec![false; self.entries];
        let mut remap: Vec<Option<usize>> = match &self.layout {
            Layout::V1 => Vec::new(),
            Layout::V2(table) => vec![None; table.sets.len()],
        };
        let mut replaced = new.iter().map(|k| k.as_str().as_bytes()).peekable();
        for (kept, (key, mut body)) in kept.iter_mut().zip(self.entries()) {
            while replaced.next_if(|k| *k < key).is_some() {}
            if replaced.peek() == Some(&key) || !keep(&AnnexKey::new(key_str(key))) {
                continue;
            }
            match &self.layout {
                Layout::V1 => match decode_v1(body) {
                    Some(fields) => {
                        sets.id(fields.iter().map(|(n, _)| *n));
                    }
                    // A stored entry that does not decode is no base: dropped.
                    None => continue,
                },
                Layout::V2(table) => {
                    let old = varint(&mut body).unwrap_or_default() as usize;
                    if remap[old].is_none() {
                        remap[old] = Some(sets.id(table.set_names(old)));
                    }
                }
            }
            *kept = true;
        }
        let entries = new.len() + kept.iter().filter(|k| **k).count();

        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut out = Summed {
            out: std::io::BufWriter::with_capacity(1 << 16, tmp),
            sum: Sum::new(),
        };
        out.put(MAGIC)?;
        out.put(&FORMAT.to_le_bytes())?;
        let mut scratch = Encoder::default();
        let numbers = sets.header(&mut scratch, entries);
        out.put(scratch.as_slice())?;

        // The entries: stored (kept) and new, merged in key order.
        let mut body = Encoder::default();
        let mut new = new.iter().zip(new_sets).peekable();
        let mut stored = self
            .entries()
            .zip(&kept)
            .filter_map(|(entry, &kept)| kept.then_some(entry))
            .peekable();
        loop {
            let next_stored = stored.peek().copied();
            let take_new = match (next_stored, new.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((key, _)), Some((k, _))) => k.as_str().as_bytes() < key,
            };
            body.clear();
            let key = if take_new {
                let (key, set) = new.next().expect("peeked");
                let agreed = updates.get(key).expect("a listed key has an entry");
                put_varint(&mut body, numbers[set] as u64);
                for (at, (_, values)) in agreed.0.iter().enumerate() {
                    encode_field(&mut body, at, values);
                }
                key.as_str().as_bytes()
            } else {
                stored.next();
                let (key, mut stored_body) = next_stored.expect("peeked");
                match &self.layout {
                    Layout::V1 => {
                        let fields = decode_v1(stored_body).unwrap_or_default();
                        let set = sets.id(fields.iter().map(|(n, _)| *n));
                        put_varint(&mut body, numbers[set] as u64);
                        for (at, (_, values)) in fields.iter().enumerate() {
                            if !values.is_empty() {
                                put_field(&mut body, at, values.len(), values.iter());
                            }
                        }
                    }
                    Layout::V2(_) => {
                        let old = varint(&mut stored_body).unwrap_or_default() as usize;
                        let set = remap[old].expect("mapped for every kept entry");
                        put_varint(&mut body, numbers[set] as u64);
                        body.raw(stored_body);
                    }
                }
                key
            };
            scratch.clear();
            put_bytes(&mut scratch, key);
            put_bytes(&mut scratch, body.as_slice());
            out.put(scratch.as_slice())?;
        }
        let sum = out.sum.finish();
        out.out.write_all(&sum.to_le_bytes())?;
        let tmp = out.out.into_inner().map_err(|e| e.into_error())?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The known-field sets of a file being written, as they are met; the header lists them in
/// order of their names (so a file is the same bytes whatever order it was built in), and
/// only the names they use, in name order.
#[derive(Default)]
struct Sets {
    list: Vec<Vec<String>>,
    /// The set found last: consecutive entries almost always share one.
    last: usize,
}

impl Sets {
    /// The set of `names` (in name order, distinct: an [`Agreed`]'s or a checked file's).
    fn id<'n>(&mut self, names: impl Clone + Iterator<Item = &'n str>) -> usize {
        let same = |set: &Vec<String>| set.iter().map(String::as_str).eq(names.clone());
        if self.list.get(self.last).is_some_and(same) {
            return self.last;
        }
        self.last = match self.list.iter().position(same) {
            Some(id) => id,
            None => {
                self.list.push(names.map(str::to_string).collect());
                self.list.len() - 1
            }
        };
        self.last
    }

    /// Encodes the header after the format: names, sets, and the number of entries. Returns
    /// the number each set has in the file.
    fn header(&self, out: &mut Encoder, entries: usize) -> Vec<usize> {
        let names: Vec<&str> = self
            .list
            .iter()
            .flatten()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        put_varint(out, names.len() as u64);
        for name in &names {
            put_bytes(out, name.as_bytes());
        }
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_by(|&a, &b| self.list[a].cmp(&self.list[b]));
        let mut numbers = vec![0; order.len()];
        for (number, &id) in order.iter().enumerate() {
            numbers[id] = number;
        }
        put_varint(out, self.list.len() as u64);
        for set in order.iter().map(|&id| &self.list[id]) {
            put_varint(out, set.len() as u64);
            for name in set {
                let at = names
                    .binary_search(&name.as_str())
                    .expect("every set's names are listed");
                put_varint(out, at as u64);
            }
        }
        put_varint(out, entries as u64);
        numbers
    }
}

/// Checks the file and indexes its entries.
fn parse(bytes: &[u8]) -> Option<(Layout, Index)> {
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let format = u32::from_le_bytes(bytes[MAGIC.len()..HEADER_LEN].try_into().ok()?);
    match format {
        FORMAT => {
            let mut s = Sum::new();
            s.update(content);
            (s.finish().to_le_bytes() == sum).then_some(())?;
            parse_v2(content)
        }
        FORMAT_1 => {
            (checksum(content).to_le_bytes() == sum).then_some(())?;
            parse_v1(content)
        }
        _ => None,
    }
}

/// Format 1: entry count, then per entry the key and the body (u32 lengths). Bodies are
/// checked when decoded, as that format's reader did.
fn parse_v1(content: &[u8]) -> Option<(Layout, Index)> {
    let mut rest = &content[HEADER_LEN..];
    let entries = take_len(true, &mut rest)?;
    (entries.saturating_mul(8) <= rest.len()).then_some(())?;
    let index = index_entries(content, rest, entries, true, |_| Some(()))?;
    Some((Layout::V1, index))
}

/// Format 2: the header (names, sets, entry count), then the entries, every body checked.
fn parse_v2(content: &[u8]) -> Option<(Layout, Index)> {
    let mut rest = &content[HEADER_LEN..];
    let count = |rest: &mut &[u8]| {
        let n = take_len(false, rest)?;
        (n <= rest.len()).then_some(n)
    };
    let mut table = Table::default();
    for _ in 0..count(&mut rest)? {
        let name = std::str::from_utf8(take_bytes(false, &mut rest)?).ok()?;
        if table.names.last().is_some_and(|last| last.as_str() >= name) {
            return None;
        }
        table.names.push(name.to_string());
    }
    for _ in 0..count(&mut rest)? {
        let mut set = Vec::new();
        for _ in 0..count(&mut rest)? {
            let at = u32::try_from(varint(&mut rest)?).ok()?;
            if at as usize >= table.names.len() || set.last().is_some_and(|&last| last >= at) {
                return None;
            }
            set.push(at);
        }
        table.sets.push(set);
    }
    // An entry takes at least 3 bytes (two lengths and a set).
    let entries = take_len(false, &mut rest)?;
    (entries.saturating_mul(3) <= rest.len()).then_some(())?;
    let index = index_entries(content, rest, entries, false, |body| {
        decode_v2_with(&table, body, |_, _| {})
    })?;
    Some((Layout::V2(table), index))
}

/// Where the entries of a file read are.
struct Index {
    slots: Slots,
    first: usize,
    entries: usize,
}

/// Indexes the `entries` entries that make up all of `rest` (the end of `content`), keys
/// UTF-8 and strictly ascending, each body accepted by `check`.
fn index_entries(
    content: &[u8],
    mut rest: &[u8],
    entries: usize,
    v1: bool,
    check: impl Fn(&[u8]) -> Option<()>,
) -> Option<Index> {
    let first = content.len() - rest.len();
    let mut slots = Slots::for_entries(entries);
    let mut last: Option<&[u8]> = None;
    for _ in 0..entries {
        let at = u32::try_from(content.len() - rest.len())
            .ok()
            .filter(|&at| at != Slots::EMPTY)?;
        let key = take_bytes(v1, &mut rest)?;
        std::str::from_utf8(key).ok()?;
        if last.is_some_and(|last| last >= key) {
            return None;
        }
        last = Some(key);
        check(take_bytes(v1, &mut rest)?)?;
        slots.insert(key, at);
    }
    rest.is_empty().then_some(Index {
        slots,
        first,
        entries,
    })
}

/// Entry offsets by a hash of the key (open addressing, linear probing, at most 80 % full):
/// about 5 bytes an entry, and a lookup touches one entry or two where a binary search over
/// 100,000 sorted keys misses the cache a dozen times.
#[derive(Default)]
struct Slots(Vec<u32>);

impl Slots {
    const EMPTY: u32 = u32::MAX;

    fn for_entries(n: usize) -> Slots {
        Slots(vec![Self::EMPTY; n + n / 4 + 1])
    }

    fn home(&self, key: &[u8]) -> usize {
        ((u128::from(checksum(key)) * self.0.len() as u128) >> 64) as usize
    }

    /// Adds `key` (not yet in) at `at`.
    fn insert(&mut self, key: &[u8], at: u32) {
        let mut i = self.home(key);
        while self.0[i] != Self::EMPTY {
            i = if i + 1 == self.0.len() { 0 } else { i + 1 };
        }
        self.0[i] = at;
    }

    /// Where `key` is, given the key stored at an offset.
    fn find<'a>(&self, key: &[u8], key_at: impl Fn(u32) -> &'a [u8]) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        let mut i = self.home(key);
        loop {
            match self.0[i] {
                Self::EMPTY => return None,
                at if key_at(at) == key => return Some(at),
                _ => i = if i + 1 == self.0.len() { 0 } else { i + 1 },
            }
        }
    }
}

/// A format 2 body as the set's fields with their values.
fn decode_v2(table: &Table, body: &[u8]) -> Option<Vec<(Arc<str>, Vec<String>)>> {
    let mut fields: Vec<(Arc<str>, Vec<String>)> = Vec::new();
    decode_v2_with(table, body, |set, listed| {
        if fields.is_empty() {
            fields = table
                .set_names(set)
                .map(|n| (Arc::from(n), Vec::new()))
                .collect();
        }
        if let Some((at, value)) = listed {
            fields[at].1.push(value.to_string());
        }
    })?;
    Some(fields)
}

/// Walks a format 2 body, checking it: `each(set, None)` first, then `each(set, Some((position
/// in the set, value)))` for every value.
fn decode_v2_with<'a>(
    table: &Table,
    mut body: &'a [u8],
    mut each: impl FnMut(usize, Option<(usize, &'a str)>),
) -> Option<()> {
    let set = usize::try_from(varint(&mut body)?).ok()?;
    let len = table.sets.get(set)?.len();
    each(set, None);
    let mut next = 0;
    while !body.is_empty() {
        let at = usize::try_from(varint(&mut body)?).ok()?;
        if at < next || at >= len {
            return None;
        }
        next = at + 1;
        let n = take_len(false, &mut body)?;
        // A listed field has values (an empty one is not listed), each at least one byte.
        if n == 0 || n > body.len() {
            return None;
        }
        for _ in 0..n {
            let value = std::str::from_utf8(take_bytes(false, &mut body)?).ok()?;
            each(set, Some((at, value)));
        }
    }
    Some(())
}

type FieldsV1<'a> = Vec<(&'a str, Vec<&'a str>)>;

/// A format 1 body: field count, then per field its name and values; names strictly in
/// name order (as every writer of that format wrote them).
fn decode_v1(mut body: &[u8]) -> Option<FieldsV1<'_>> {
    let n = take_len(true, &mut body)?;
    (n.saturating_mul(8) <= body.len()).then_some(())?;
    let mut fields: FieldsV1<'_> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = std::str::from_utf8(take_bytes(true, &mut body)?).ok()?;
        if fields.last().is_some_and(|(last, _)| *last >= name) {
            return None;
        }
        let count = take_len(true, &mut body)?;
        (count.saturating_mul(4) <= body.len()).then_some(())?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(std::str::from_utf8(take_bytes(true, &mut body)?).ok()?);
        }
        fields.push((name, values));
    }
    body.is_empty().then_some(fields)
}

/// One entry's fields in format 1, `(name, values)` in name order: the same bytes whether
/// they come from an [`Agreed`] or straight from a file's fields.
fn encode_v1<'a>(
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

/// A format 2 field at position `at` of its set: nothing when it has no values.
fn encode_field(out: &mut Encoder, at: usize, values: &[String]) {
    if !values.is_empty() {
        put_field(out, at, values.len(), values.iter());
    }
}

fn put_field<S: AsRef<str>>(
    out: &mut Encoder,
    at: usize,
    n: usize,
    values: impl Iterator<Item = S>,
) {
    put_varint(out, at as u64);
    put_varint(out, n as u64);
    for value in values {
        put_bytes(out, value.as_ref().as_bytes());
    }
}

fn put_bytes(out: &mut Encoder, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.raw(bytes);
}

/// LEB128: seven bits a byte, low first, the high bit set on all but the last.
fn put_varint(out: &mut Encoder, mut v: u64) {
    while v >= 0x80 {
        out.u8(v as u8 | 0x80);
        v >>= 7;
    }
    out.u8(v as u8);
}

/// Reads what [`put_varint`] writes, and only that: a number spelled with a needless zero
/// byte or beyond 64 bits is rejected, so that equal entries are always equal bytes.
#[inline]
fn varint(input: &mut &[u8]) -> Option<u64> {
    // Almost every length in the file is below 128: one byte (the key search reads one per
    // probe).
    if let Some((&byte, rest)) = input.split_first()
        && byte < 0x80
    {
        *input = rest;
        return Some(u64::from(byte));
    }
    varint_long(input)
}

fn varint_long(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        let low = u64::from(byte & 0x7f);
        if shift == 63 && low > 1 {
            return None;
        }
        v |= low << shift;
        if byte & 0x80 == 0 {
            return (byte != 0 || shift == 0).then_some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// A length: u32 little-endian in format 1, LEB128 in format 2.
fn take_len(v1: bool, input: &mut &[u8]) -> Option<usize> {
    if v1 {
        let (n, rest) = input.split_first_chunk::<4>()?;
        *input = rest;
        Some(u32::from_le_bytes(*n) as usize)
    } else {
        usize::try_from(varint(input)?).ok()
    }
}

fn take_bytes<'a>(v1: bool, input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_len(v1, input)?;
    if n > input.len() {
        return None;
    }
    let (bytes, rest) = input.split_at(n);
    *input = rest;
    Some(bytes)
}

/// A stored key (checked UTF-8 when the file was read).
fn key_str(key: &[u8]) -> &str {
    std::str::from_utf8(key).unwrap_or_default()
}

/// Format 2's checksum, fed as the file is written: [`checksum`]'s steps (each a bijection of
/// the state for a fixed word and of the word for a fixed state, so any single changed word
/// changes the result), with the length mixed in last since it is known only then.
struct Sum {
    h: u64,
    pending: [u8; 8],
    filled: usize,
    len: u64,
}

impl Sum {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    fn new() -> Sum {
        Sum {
            h: Self::K,
            pending: [0; 8],
            filled: 0,
            len: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        self.h = (self.h ^ word).wrapping_mul(Self::K);
        self.h ^= self.h >> 29;
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.filled > 0 {
            let take = (8 - self.filled).min(bytes.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.pending));
            self.filled = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.filled].copy_from_slice(&self.pending[..self.filled]);
        self.mix(u64::from_le_bytes(last));
        let len = self.len;
        self.mix(len);
        self.h
    }
}

/// A writer that checksums what goes through it.
struct Summed<W: Write> {
    out: W,
    sum: Sum,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sum.update(bytes);
        self.out.write_all(bytes)
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

    /// The format 1 writer as it shipped (before format 2), kept to make the files a user's
    /// clone holds: every entry names every field, u32 lengths, one checksum over the lot.
    fn write_format_1(path: &Path, entries: &[(AnnexKey, Agreed)]) {
        let mut sorted: Vec<&(AnnexKey, Agreed)> = entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = Encoder::default();
        out.raw(MAGIC);
        out.u32(1);
        out.len(sorted.len());
        for (key, agreed) in sorted {
            out.bytes(key.as_str().as_bytes());
            let mut entry = Encoder::default();
            entry.len(agreed.0.len());
            for (name, values) in &agreed.0 {
                entry.bytes(name.as_bytes());
                entry.len(values.len());
                for value in values {
                    entry.bytes(value.as_bytes());
                }
            }
            out.bytes(entry.as_slice());
        }
        let sum = checksum(out.as_slice());
        out.raw(&sum.to_le_bytes());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, out.as_slice()).unwrap();
    }

    fn format_of(path: &Path) -> u32 {
        let bytes = std::fs::read(path).unwrap();
        u32::from_le_bytes(bytes[8..12].try_into().unwrap())
    }

    fn managed(fields: &[FieldId]) -> ManagedFields {
        ManagedFields::new(fields, &std::collections::BTreeMap::new()).unwrap()
    }

    use crate::sync::fields::FieldId;

    #[test]
    fn format_1_is_read_and_rewritten_as_format_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("music-commander/base-x");
        let managed = managed(&[FieldId::Rating, FieldId::Crate, FieldId::Comment]);
        let file: FieldSet = [("rating", "5"), ("crate", "A"), ("crate", "B")]
            .into_iter()
            .collect();
        let from_fields = Agreed::from_fields(&file, &managed);
        let (a, b, c) = (
            AnnexKey::new("K-a"),
            AnnexKey::new("K-b"),
            AnnexKey::new("K-c"),
        );
        let partial = agreed(&[("rating", &["3"]), ("title", &[])]);
        write_format_1(
            &path,
            &[
                (b.clone(), partial.clone()),
                (a.clone(), from_fields.clone()),
                (c.clone(), Agreed::new()),
            ],
        );
        assert_eq!(format_of(&path), 1);

        let store = BaseStore::open(path.clone());
        assert_eq!(store.found(), Found::Valid);
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(&a), Some(from_fields.clone()));
        assert_eq!(store.get(&b), Some(partial.clone()));
        assert_eq!(store.get(&c), Some(Agreed::new()));
        let mut scratch = Encoder::default();
        assert!(store.holds(&a, &from_fields, &mut scratch));
        assert!(store.holds(&b, &partial, &mut scratch));
        assert!(!store.holds(&b, &from_fields, &mut scratch));
        assert!(store.holds_fields(&a, &file, &managed, &mut scratch));
        assert!(!store.holds_fields(&b, &file, &managed, &mut scratch));

        // Any write rewrites every kept entry in format 2.
        let d = AnnexKey::new("K-d");
        store
            .write(&HashMap::from([(d.clone(), partial.clone())]), |_| true)
            .unwrap();
        assert_eq!(format_of(&path), FORMAT);
        let store = BaseStore::open(path.clone());
        assert_eq!(store.found(), Found::Valid);
        assert_eq!(store.len(), 4);
        assert_eq!(store.get(&a), Some(from_fields.clone()));
        assert_eq!(store.get(&b), Some(partial.clone()));
        assert_eq!(store.get(&c), Some(Agreed::new()));
        assert_eq!(store.get(&d), Some(partial.clone()));
        assert!(store.holds(&a, &from_fields, &mut scratch));
        assert!(store.holds_fields(&a, &file, &managed, &mut scratch));
        assert!(!store.holds_fields(&b, &file, &managed, &mut scratch));
    }

    #[test]
    fn holds_fields_is_from_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        let all = ManagedFields::all();
        let some = managed(&[FieldId::Rating, FieldId::Crate]);
        let file: FieldSet = [
            ("rating", "5"),
            ("crate", "A"),
            ("crate", "B"),
            ("title", "T"),
        ]
        .into_iter()
        .collect();
        let (a, b) = (AnnexKey::new("K-a"), AnnexKey::new("K-b"));
        let updates = HashMap::from([
            (a.clone(), Agreed::from_fields(&file, &all)),
            (b.clone(), Agreed::from_fields(&file, &some)),
        ]);
        BaseStore::open(path.clone())
            .write(&updates, |_| true)
            .unwrap();
        let store = BaseStore::open(path);
        let mut scratch = Encoder::default();
        assert!(store.holds_fields(&a, &file, &all, &mut scratch));
        assert!(store.holds_fields(&b, &file, &some, &mut scratch));
        // Another known set is another base, even where the values agree.
        assert!(!store.holds_fields(&a, &file, &some, &mut scratch));
        assert!(!store.holds_fields(&b, &file, &all, &mut scratch));
        let mut edited = file.clone();
        edited.set("crate", ["A"]);
        assert!(!store.holds_fields(&a, &edited, &all, &mut scratch));
        // A field outside `some` does not count for `some`.
        edited = file.clone();
        edited.set("title", ["U"]);
        assert!(store.holds_fields(&b, &edited, &some, &mut scratch));
        assert!(!store.holds_fields(&a, &edited, &all, &mut scratch));
        assert!(!store.holds_fields(&AnnexKey::new("K-c"), &file, &all, &mut scratch));
    }

    #[test]
    fn one_known_set_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        let all = ManagedFields::all();
        let updates: HashMap<AnnexKey, Agreed> = (0..1000)
            .map(|i| {
                let file: FieldSet = [("rating", format!("{}", i % 5))].into_iter().collect();
                (
                    AnnexKey::new(format!("K-{i:04}")),
                    Agreed::from_fields(&file, &all),
                )
            })
            .collect();
        BaseStore::open(path.clone())
            .write(&updates, |_| true)
            .unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        // Per entry: the key (6 bytes and its length), the body's length, the set, and one
        // field (position, count, length, value): 14 bytes; the header names 53 fields once.
        assert!(size < 1000 * 14 + 2000, "{size} bytes");
        let store = BaseStore::open(path);
        match &store.layout {
            Layout::V2(table) => {
                assert_eq!(table.sets.len(), 1);
                assert_eq!(table.names.len(), FieldId::ALL.len());
            }
            Layout::V1 => panic!("written as format 1"),
        }
    }

    #[test]
    fn sets_no_entry_uses_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        let (a, b) = (AnnexKey::new("K-a"), AnnexKey::new("K-b"));
        let old = agreed(&[("rating", &["1"]), ("comment", &[])]);
        let new = agreed(&[("rating", &["2"]), ("bpm", &["120"])]);
        BaseStore::open(path.clone())
            .write(
                &HashMap::from([(a.clone(), old.clone()), (b.clone(), old)]),
                |_| true,
            )
            .unwrap();
        BaseStore::open(path.clone())
            .write(&HashMap::from([(a.clone(), new.clone())]), |_| true)
            .unwrap();
        BaseStore::open(path.clone())
            .write(&HashMap::new(), |k| *k != b)
            .unwrap();
        let store = BaseStore::open(path);
        assert_eq!(store.get(&a), Some(new));
        assert_eq!(store.get(&b), None);
        let Layout::V2(table) = &store.layout else {
            panic!("written as format 1")
        };
        assert_eq!(table.sets, vec![vec![0, 1]]);
        assert_eq!(table.names, vec!["bpm".to_string(), "rating".to_string()]);
    }

    #[test]
    fn varints_have_one_spelling() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut e = Encoder::default();
            put_varint(&mut e, v);
            let mut input = e.as_slice();
            assert_eq!(varint(&mut input), Some(v));
            assert!(input.is_empty());
        }
        for bad in [
            &[0x80, 0x00][..],
            &[0xff, 0x00],
            &[0x80],
            &[0xff; 10],
            &[0xff; 11],
        ] {
            assert_eq!(varint(&mut &bad[..]), None, "{bad:?}");
        }
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(varint(&mut &max[..]), Some(u64::MAX));
        max[9] = 0x02;
        assert_eq!(varint(&mut &max[..]), None);
    }

    #[test]
    fn sum_is_the_same_fed_in_pieces() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let mut whole = Sum::new();
        whole.update(&bytes);
        let whole = whole.finish();
        for cut in [0, 1, 7, 8, 9, 50, 99, 100] {
            let mut pieces = Sum::new();
            let (a, b) = bytes.split_at(cut);
            pieces.update(a);
            for byte in b {
                pieces.update(std::slice::from_ref(byte));
            }
            assert_eq!(pieces.finish(), whole, "cut at {cut}");
        }
        // Trailing zero bytes are part of what is summed.
        let mut longer = Sum::new();
        longer.update(&bytes);
        longer.update(&[0]);
        assert_ne!(longer.finish(), whole);
    }

    #[test]
    fn unknown_formats_and_disorder_read_as_no_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        BaseStore::open(path.clone())
            .write(
                &HashMap::from([(AnnexKey::new("K"), agreed(&[("rating", &["5"])]))]),
                |_| true,
            )
            .unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] = 3;
        let n = bytes.len() - CHECKSUM_LEN;
        let mut sum = Sum::new();
        sum.update(&bytes[..n]);
        let sum = sum.finish().to_le_bytes();
        bytes[n..].copy_from_slice(&sum);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(BaseStore::open(path.clone()).found(), Found::Unreadable);

        // A format 1 file whose keys are out of order (no writer made one) is not searched.
        let mut out = Encoder::default();
        out.raw(MAGIC);
        out.u32(1);
        out.len(2);
        for key in ["K-b", "K-a"] {
            out.bytes(key.as_bytes());
            out.bytes(&0u32.to_le_bytes());
        }
        let sum = checksum(out.as_slice());
        out.raw(&sum.to_le_bytes());
        std::fs::write(&path, out.as_slice()).unwrap();
        assert_eq!(BaseStore::open(path).found(), Found::Unreadable);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 6] = ["bpm", "comment", "crate", "hotcue-1", "rating", "ü"];

        fn agreed_strategy() -> impl Strategy<Value = Agreed> {
            proptest::collection::btree_map(
                proptest::sample::select(&NAMES[..]),
                proptest::collection::btree_set(".{0,6}", 0..3),
                0..NAMES.len(),
            )
            .prop_map(|fields| {
                let mut a = Agreed::new();
                for (name, values) in fields {
                    a.set(name, values.into_iter().collect());
                }
                a
            })
        }

        fn base_strategy() -> impl Strategy<Value = HashMap<AnnexKey, Agreed>> {
            proptest::collection::hash_map(
                "[a-z0-9é-]{0,8}".prop_map(AnnexKey::new),
                agreed_strategy(),
                0..12,
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn writes_read_back(
                first in base_strategy(),
                second in base_strategy(),
                drop_bits in any::<u64>(),
                first_as_format_1 in any::<bool>(),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("base");
                if first_as_format_1 {
                    let entries: Vec<(AnnexKey, Agreed)> = first.clone().into_iter().collect();
                    write_format_1(&path, &entries);
                } else {
                    BaseStore::open(path.clone()).write(&first, |_| true).unwrap();
                }
                let store = BaseStore::open(path.clone());
                prop_assert_eq!(store.found(), Found::Valid);
                prop_assert_eq!(store.len(), first.len());
                let mut scratch = Encoder::default();
                for (key, a) in &first {
                    prop_assert_eq!(store.get(key), Some(a.clone()));
                    prop_assert!(store.holds(key, a, &mut scratch));
                    for other in second.values() {
                        prop_assert_eq!(store.holds(key, other, &mut scratch), other == a);
                    }
                }

                // A second write: `second` replaces or adds, some stored entries are dropped.
                let dropped = |k: &AnnexKey| checksum(k.as_str().as_bytes()) & drop_bits & 1 == 1;
                store.write(&second, |k| !dropped(k)).unwrap();
                let mut model: HashMap<AnnexKey, Agreed> = first
                    .into_iter()
                    .filter(|(k, _)| !dropped(k))
                    .collect();
                model.extend(second.clone());
                let store = BaseStore::open(path.clone());
                prop_assert_eq!(store.found(), Found::Valid);
                prop_assert_eq!(store.len(), model.len());
                for (key, a) in &model {
                    prop_assert_eq!(store.get(key), Some(a.clone()));
                    prop_assert!(store.holds(key, a, &mut scratch));
                }
                for key in second.keys().chain(model.keys()) {
                    for other in model.values() {
                        prop_assert_eq!(
                            store.holds(key, other, &mut scratch),
                            store.get(key).as_ref() == Some(other)
                        );
                    }
                }
                // Writing nothing new keeps the bytes.
                let bytes = std::fs::read(&path).unwrap();
                store.write(&HashMap::new(), |_| true).unwrap();
                prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            }

            #[test]
            fn holds_fields_agrees_with_from_fields(
                stored in proptest::collection::vec((0..6usize, 0..3usize), 0..8),
                now in proptest::collection::vec((0..6usize, 0..3usize), 0..8),
                stored_managed in proptest::collection::btree_set(0..5usize, 0..5),
                now_managed in proptest::collection::btree_set(0..5usize, 0..5),
                as_format_1 in any::<bool>(),
                same in any::<bool>(),
                same_managed in any::<bool>(),
            ) {
                const FIELDS: [FieldId; 5] =
                    [FieldId::Rating, FieldId::Crate, FieldId::Bpm, FieldId::Comment, FieldId::Title];
                // A name no managed set holds, and a few values per field.
                let set_of = |pairs: &[(usize, usize)]| -> FieldSet {
                    pairs
                        .iter()
                        .map(|&(f, v)| {
                            let name = FIELDS.get(f).map_or("other", |f| f.name());
                            (name.to_string(), format!("v{v}"))
                        })
                        .collect()
                };
                let managed_of = |picked: &std::collections::BTreeSet<usize>| {
                    managed(&picked.iter().map(|&i| FIELDS[i]).collect::<Vec<_>>())
                };
                let (stored, now) = (set_of(&stored), set_of(&now));
                let (stored_managed, now_managed) =
                    (managed_of(&stored_managed), managed_of(&now_managed));
                // Half the cases ask about the very fields stored (plus, maybe, one outside).
                let (now, now_managed) = if same {
                    let mut now = stored.clone();
                    now.insert("other", "x");
                    (now, stored_managed.clone())
                } else if same_managed {
                    // The values decide.
                    (now, stored_managed.clone())
                } else {
                    (now, now_managed)
                };
                let expected = Agreed::from_fields(&now, &now_managed) == Agreed::from_fields(&stored, &stored_managed);
                prop_assert!(!same || expected);
                let key = AnnexKey::new("K");
                let base = Agreed::from_fields(&stored, &stored_managed);
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("base");
                if as_format_1 {
                    write_format_1(&path, &[(key.clone(), base.clone())]);
                } else {
                    BaseStore::open(path.clone())
                        .write(&HashMap::from([(key.clone(), base.clone())]), |_| true)
                        .unwrap();
                }
                let store = BaseStore::open(path);
                let mut scratch = Encoder::default();
                prop_assert_eq!(
                    store.holds_fields(&key, &now, &now_managed, &mut scratch),
                    expected
                );
            }

            #[test]
            fn damage_is_unreadable(
                base in base_strategy(),
                at in any::<prop::sample::Index>(),
                flip in 1u8..=255,
                cut in any::<bool>(),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("base");
                BaseStore::open(path.clone()).write(&base, |_| true).unwrap();
                let mut bytes = std::fs::read(&path).unwrap();
                let at = at.index(bytes.len());
                if cut {
                    bytes.truncate(at);
                } else {
                    bytes[at] ^= flip;
                }
                std::fs::write(&path, &bytes).unwrap();
                let store = BaseStore::open(path);
                prop_assert_eq!(store.found(), Found::Unreadable);
                prop_assert!(store.is_empty());
                for key in base.keys() {
                    prop_assert_eq!(store.get(key), None);
                }
            }
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
