//! The read through the persistent metadata cache: the parsed logs at one commit of the
//! branch, carried to a new head by the logs that changed.

use std::collections::{HashMap, HashSet};

use crate::annex::Repo;
use crate::annex::branch::{self, BRANCH};
use crate::annex::cache::{self, Freshness};
use crate::annex::journal::Journal;
use crate::annex::metalog;
use crate::annex::repo::{Blob, CatFile};
use crate::error::Result;
use crate::model::{AnnexKey, FieldSet};

use super::{AnnexRefs, Lookup, MetTree, PATH_LOOKUP_LIMIT, hash_levels, read};

/// [`read`] through the persistent metadata cache, which holds, for one commit of the
/// git-annex branch, the parsed log of every key read before. Same answers as [`read`]:
///
/// - the branch head (and every `*/git-annex` ref) comes from one `git for-each-ref`; at an
///   unchanged head the cached fields are the branch's fields;
/// - at a new head, one `git diff-tree` between the cached commit and the head names the logs
///   whose content differs — by value, so a rewritten branch (`git annex forget`) is fine —
///   and only those blobs are read; an unreadable old commit or a changed `difference.log`
///   (hash levels) means a full read;
/// - keys never cached are read at the head like [`read`] does;
/// - the journal is read afresh every time and replaces the branch version of its keys;
/// - an unmerged sibling ref (fetched, not merged yet) needs a union of raw logs: then this
///   is exactly [`read`], and the cache is left alone.
///
/// `FromScratch` ignores the cache and rewrites it from a full read.
pub fn read_with(
    repo: &Repo,
    keys: &[AnnexKey],
    freshness: Freshness,
) -> Result<HashMap<AnnexKey, FieldSet>> {
    read_with_state(repo, keys, freshness).map(|(fields, _)| fields.into_map(keys))
}

/// What the metadata of every key was read from: the tip of every git-annex branch and the
/// journal's content, taken before reading. Equal states give equal answers, for any keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoState(Vec<u8>);

impl RepoState {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// [`read_with`], also saying which [`RepoState`] the answers come from. Takes the keys by
/// reference or by value: a sync asks for 100,000 keys it holds elsewhere, and copying them
/// all would be 10 MB more at its peak.
pub fn read_with_state<K: std::borrow::Borrow<AnnexKey>>(
    repo: &Repo,
    keys: &[K],
    freshness: Freshness,
) -> Result<(Snapshot, RepoState)> {
    let keys: Vec<&AnnexKey> = keys.iter().map(|k| k.borrow()).collect();
    let mut journal = Journal::open(repo)?;
    journal.preload()?;
    let tips = branch::tips(repo)?;
    let mut state = journal.fingerprint();
    let mut named: Vec<(&str, &str)> = tips
        .iter()
        .map(|t| (t.name.as_str(), t.oid.as_str()))
        .collect();
    named.sort_unstable();
    for (name, oid) in named {
        state.extend_from_slice(name.as_bytes());
        state.push(b' ');
        state.extend_from_slice(oid.as_bytes());
        state.push(b'\n');
    }
    let state = RepoState(state);
    read_tips(repo, &keys, freshness, &journal, &tips).map(|fields| (fields, state))
}

fn read_tips(
    repo: &Repo,
    keys: &[&AnnexKey],
    freshness: Freshness,
    journal: &Journal,
    tips: &[branch::Tip],
) -> Result<Snapshot> {
    let Some(head) = tips
        .iter()
        .find(|t| t.name == BRANCH)
        .map(|t| t.oid.clone())
    else {
        // No branch yet (a fresh clone): nothing to cache.
        return read(repo, &owned(keys)).map(Snapshot::from_map);
    };
    let cached = match freshness {
        Freshness::UseCache => BranchCache::load(repo),
        Freshness::FromScratch => None,
    };
    let mut dirty = freshness == Freshness::FromScratch;

    // Sibling tips the head contains need no union; remembered per head, because checking
    // costs a second git call.
    let mut siblings: Vec<&str> = tips
        .iter()
        .filter(|t| t.name != BRANCH && t.oid != head)
        .map(|t| t.oid.as_str())
        .collect();
    siblings.sort_unstable();
    siblings.dedup();
    let known_merged: &[String] = match &cached {
        Some(c) if c.head == head => &c.merged,
        _ => &[],
    };
    if siblings
        .iter()
        .any(|s| !known_merged.iter().any(|m| m == s))
    {
        let contained = repo.git_output(&[
            "for-each-ref",
            "--format=%(objectname)",
            &format!("--merged={head}"),
        ])?;
        let contained: HashSet<&[u8]> = contained.split(|&b| b == b'\n').collect();
        if siblings.iter().any(|s| !contained.contains(s.as_bytes())) {
            if freshness == Freshness::FromScratch {
                // Asked not to trust the cache: make sure no later read does either.
                BranchCache::remove(repo);
            }
            return read(repo, &owned(keys)).map(Snapshot::from_map);
        }
        dirty = true;
    }
    let merged: Vec<String> = siblings.iter().map(|s| s.to_string()).collect();

    let moved = cached.as_ref().is_some_and(|c| c.head != head);

    let mut unique: HashSet<&AnnexKey> = HashSet::with_capacity(keys.len());
    let wanted: Vec<&AnnexKey> = keys.iter().copied().filter(|k| unique.insert(k)).collect();
    let (mut branch, reread, fresh) = match cached {
        Some(c) if c.head == head => (c, Vec::new(), false),
        Some(c) => match c.advance(repo, &head, &unique) {
            Some((c, reread)) => (c, reread, false),
            None => (BranchCache::empty(&head), Vec::new(), true),
        },
        None => (BranchCache::empty(&head), Vec::new(), true),
    };
    dirty |= moved || fresh;

    // The keys `advance` dropped to re-read are unknown now, but already in `reread`: asked
    // for twice, they were appended twice, and the next load rejected the whole cache.
    let rereading: HashSet<&AnnexKey> = reread.iter().map(|(k, _)| k).collect();
    let missing: Vec<&AnnexKey> = wanted
        .iter()
        .copied()
        .filter(|k| !branch.fields.knows(k) && !rereading.contains(k))
        .collect();
    drop(rereading);
    if fresh || !missing.is_empty() || !reread.is_empty() {
        dirty = true;
        let refs = AnnexRefs {
            branch_exists: true,
            refs: vec![head.clone()],
        };
        let lookup = if missing.len() <= PATH_LOOKUP_LIMIT {
            Lookup::ByPath
        } else {
            Lookup::ByTree(vec![MetTree::list(repo, &head)?])
        };
        let mut cat = CatFile::start(repo)?;
        if fresh {
            branch.levels = hash_levels(&mut cat, lookup.spec(&refs, 0, "difference.log"))?;
        }
        let (mut targets, mut specs): (Vec<AnnexKey>, Vec<Vec<u8>>) = reread
            .into_iter()
            .map(|(key, oid)| (key, oid.into_bytes()))
            .unzip();
        for key in missing {
            let path = metalog::met_path_levels(key.as_str(), branch.levels);
            match lookup.spec(&refs, 0, &path) {
                Some(spec) => {
                    targets.push(key.clone());
                    specs.push(spec);
                }
                None => branch.fields.set(key.clone(), FieldSet::new()),
            }
        }
        // In slices, each parsed straight into the encoded body: after a sync that wrote
        // every file, holding 100,000 blobs and field sets at once set the peak memory.
        for (keys, specs) in targets.chunks(READ_SLICE).zip(specs.chunks(READ_SLICE)) {
            let answers = cat.get_many(specs, u64::MAX)?;
            for (key, answer) in keys.iter().zip(answers) {
                let fields = match answer {
                    Blob::Content(log) => metalog::current(&log),
                    Blob::Missing | Blob::TooLarge => FieldSet::new(),
                };
                branch.fields.append(key, &fields);
            }
        }
        cat.finish()?;
        branch.fields.sort_index();
    }
    if dirty {
        branch.merged = merged;
        branch.store(repo);
    }

    // Every key asked for is cached by now, and the cache is the answer: lookups name only
    // keys asked for, so the entries of other keys do no harm.
    let mut out = branch.fields;
    if !journal.is_empty() {
        for key in wanted {
            let path = metalog::met_path_levels(key.as_str(), branch.levels);
            if let Some(log) = journal.read(&path, false)? {
                out.set(key.clone(), metalog::current(&log));
            }
        }
    }
    Ok(out)
}

fn owned(keys: &[&AnnexKey]) -> Vec<AnnexKey> {
    keys.iter().map(|&k| k.clone()).collect()
}

/// How many logs are read from git and parsed at a time.
const READ_SLICE: usize = 4096;

/// An index slot whose entry no longer holds.
const DEAD: u32 = u32::MAX;

/// Current metadata of many keys, as [`read_with_state`] found it. Entries that come from the
/// persistent cache stay in their encoded form and are decoded only when asked for: a no-op
/// sync of 100,000 files compares every file's managed fields against its entry's bytes
/// ([`Snapshot::matches`]) and never builds 100,000 field sets (most of its time and memory
/// before). Keys read from git (new, changed, journalled) are held decoded.
#[derive(Default)]
pub struct Snapshot {
    /// Encoded entries: key, then its fields (see [`BranchCache::store`]).
    body: Vec<u8>,
    /// `(hash of the key, start of its entry in body)`, sorted: a lookup allocates nothing.
    /// An entry that no longer holds (its log changed) starts at [`DEAD`].
    index: Vec<(u64, u32)>,
    /// Entries were appended since the index was sorted: no lookups until it is.
    unsorted: bool,
    /// Decoded answers; they shadow `body`. An empty set is a key without metadata.
    decoded: HashMap<AnnexKey, FieldSet>,
}

/// What a snapshot holds for one key.
enum Found<'a> {
    Encoded(&'a [u8]),
    Decoded(&'a FieldSet),
    Unknown,
}

impl Snapshot {
    /// A snapshot of decoded answers only (keys without metadata may be absent).
    pub fn from_map(decoded: HashMap<AnnexKey, FieldSet>) -> Snapshot {
        Snapshot {
            decoded,
            ..Snapshot::default()
        }
    }

    fn find(&self, key: &AnnexKey) -> Found<'_> {
        if let Some(fields) = self.decoded.get(key) {
            return Found::Decoded(fields);
        }
        match self.encoded(key.as_str().as_bytes()) {
            Some(entry) => Found::Encoded(entry),
            None => Found::Unknown,
        }
    }

    /// The encoded fields of `key` (after its key), if the body holds it.
    fn encoded(&self, key: &[u8]) -> Option<&[u8]> {
        self.slot(key).map(|i| {
            let mut d = cache::Decoder::new(&self.body[self.index[i].1 as usize..]);
            d.bytes().expect("checked when indexed");
            d.rest()
        })
    }

    /// Where `key`'s live entry is in the index.
    fn slot(&self, key: &[u8]) -> Option<usize> {
        assert!(
            !self.unsorted,
            "the snapshot's index is sorted before lookups"
        );
        let hash = cache::checksum(key);
        let first = self.index.partition_point(|&(h, _)| h < hash);
        (first..self.index.len())
            .take_while(|&i| self.index[i].0 == hash)
            .find(|&i| {
                let start = self.index[i].1;
                start != DEAD
                    && cache::Decoder::new(&self.body[start as usize..]).bytes() == Some(key)
            })
    }

    /// Adds the entry of a key the snapshot does not hold (see [`Snapshot::drop_key`]),
    /// encoded; [`Snapshot::sort_index`] must follow before the next lookup.
    fn append(&mut self, key: &AnnexKey, fields: &FieldSet) {
        let start = u32::try_from(self.body.len()).expect("metadata cache under 4 GiB");
        let mut e = cache::Encoder::default();
        e.bytes(key.as_str().as_bytes());
        encode_fields(&mut e, fields);
        self.body.extend_from_slice(e.as_slice());
        self.index
            .push((cache::checksum(key.as_str().as_bytes()), start));
        self.unsorted = true;
    }

    fn sort_index(&mut self) {
        self.index.sort_unstable();
        self.unsorted = false;
    }

    /// Whether the cache knows `key` (with or without metadata).
    fn knows(&self, key: &AnnexKey) -> bool {
        !matches!(self.find(key), Found::Unknown)
    }

    /// The current fields of `key`; None when it has no metadata.
    pub fn fields(&self, key: &AnnexKey) -> Option<FieldSet> {
        let fields = match self.find(key) {
            Found::Decoded(fields) => fields.clone(),
            Found::Encoded(entry) => decode_entry(&mut cache::Decoder::new(entry))
                .expect("cache entries are checked when the cache is loaded"),
            Found::Unknown => return None,
        };
        (!fields.is_empty()).then_some(fields)
    }

    /// True when `key`'s current values of the fields `names` (canonical, in name order) are
    /// exactly `wanted`'s: no value more or less in any of them. Allocates nothing.
    pub fn matches<'n>(
        &self,
        key: &AnnexKey,
        wanted: &FieldSet,
        names: impl Iterator<Item = &'n str>,
    ) -> bool {
        let empty = FieldSet::new();
        let entry = match self.find(key) {
            Found::Encoded(entry) => entry,
            Found::Decoded(fields) => return same_fields(fields, wanted, names),
            Found::Unknown => return same_fields(&empty, wanted, names),
        };
        let mut d = cache::Decoder::new(entry);
        let Some(mut left) = d.len() else {
            return false;
        };
        fn next<'a>(d: &mut cache::Decoder<'a>, left: &mut usize) -> Option<&'a [u8]> {
            if *left == 0 {
                return None;
            }
            *left -= 1;
            d.bytes()
        }
        let mut held = next(&mut d, &mut left);
        // Both sides are in name order: one merge, no search per field.
        let mut want_fields = wanted.iter().peekable();
        for name in names {
            // Skip fields before `name` (unmanaged ones).
            while let Some(n) = held
                && n < name.as_bytes()
            {
                if skip_values(&mut d).is_none() {
                    return false;
                }
                held = next(&mut d, &mut left);
            }
            while want_fields.next_if(|(n, _)| *n < name).is_some() {}
            let want = want_fields
                .next_if(|(n, _)| *n == name)
                .map_or(&[][..], |(_, v)| v);
            if held == Some(name.as_bytes()) {
                let Some(count) = d.len() else { return false };
                if count != want.len() {
                    return false;
                }
                for value in want {
                    if d.bytes() != Some(value.as_bytes()) {
                        return false;
                    }
                }
                held = next(&mut d, &mut left);
            } else if !want.is_empty() {
                return false;
            }
        }
        true
    }

    /// The answers for `keys` as a map; keys without metadata are absent.
    pub fn into_map(mut self, keys: &[AnnexKey]) -> HashMap<AnnexKey, FieldSet> {
        let mut out = HashMap::with_capacity(keys.len());
        for key in keys {
            if out.contains_key(key) {
                continue;
            }
            let fields = match self.decoded.remove(key) {
                Some(fields) => Some(fields).filter(|f| !f.is_empty()),
                None => self.fields(key),
            };
            if let Some(fields) = fields {
                out.insert(key.clone(), fields);
            }
        }
        out
    }

    /// Indexes an encoded body of `count` entries; None when it does not parse.
    fn index_body(body: Vec<u8>, count: usize) -> Option<Snapshot> {
        let mut index = Vec::with_capacity(count);
        let mut d = cache::Decoder::new(&body);
        for _ in 0..count {
            let start = u32::try_from(body.len() - d.remaining()).ok()?;
            let key = d.bytes()?;
            std::str::from_utf8(key).ok()?;
            let fields = d.count(8)?;
            for _ in 0..fields {
                d.string()?;
                for _ in 0..d.count(4)? {
                    d.string()?;
                }
            }
            index.push((cache::checksum(key), start));
        }
        if !d.is_empty() {
            return None;
        }
        index.sort_unstable();
        // The store writes each key once; a body that names one twice is not ours.
        for pair in index.windows(2) {
            if pair[0].0 == pair[1].0 {
                let key = |start: u32| cache::Decoder::new(&body[start as usize..]).bytes();
                if key(pair[0].1) == key(pair[1].1) {
                    return None;
                }
            }
        }
        Some(Snapshot {
            body,
            index,
            unsorted: false,
            decoded: HashMap::new(),
        })
    }

    /// Forgets the cached entry of `key`.
    fn drop_key(&mut self, key: &AnnexKey) {
        self.decoded.remove(key);
        if let Some(i) = self.slot(key.as_str().as_bytes()) {
            self.index[i].1 = DEAD;
        }
    }

    fn set(&mut self, key: AnnexKey, fields: FieldSet) {
        self.decoded.insert(key, fields);
    }

    /// Every entry the snapshot holds, encoded, each key once, straight into `out` (a copy
    /// of 100,000 entries in between would set the run's peak memory).
    fn encode_entries(&self, out: &mut cache::Encoder) {
        // Entries of the body that still answer: not dropped, not shadowed by a decoded one.
        let live = |&&(_, start): &&(u64, u32)| {
            if start == DEAD {
                return None;
            }
            let mut d = cache::Decoder::new(&self.body[start as usize..]);
            let key = d.string()?;
            if !self.decoded.is_empty() && self.decoded.contains_key(&AnnexKey::new(key)) {
                return None;
            }
            skip_entry(&mut d).expect("entries are checked when the cache is loaded");
            Some(&self.body[start as usize..self.body.len() - d.remaining()])
        };
        let count = self.index.iter().filter(|e| live(e).is_some()).count();
        out.reserve(self.body.len());
        out.len(count + self.decoded.len());
        for entry in self.index.iter().filter_map(|e| live(&e)) {
            out.raw(entry);
        }
        for (key, fields) in &self.decoded {
            out.bytes(key.as_str().as_bytes());
            encode_fields(out, fields);
        }
    }
}

/// `same_fields` for decoded sets: the values of every field in `names` agree.
fn same_fields<'n>(a: &FieldSet, b: &FieldSet, names: impl Iterator<Item = &'n str>) -> bool {
    let mut names = names;
    names.all(|name| a.get(name).unwrap_or(&[]) == b.get(name).unwrap_or(&[]))
}

fn skip_values(d: &mut cache::Decoder<'_>) -> Option<()> {
    for _ in 0..d.len()? {
        d.bytes()?;
    }
    Some(())
}

/// Skips one entry's fields.
fn skip_entry(d: &mut cache::Decoder<'_>) -> Option<()> {
    for _ in 0..d.len()? {
        d.bytes()?;
        skip_values(d)?;
    }
    Some(())
}

fn encode_fields(e: &mut cache::Encoder, fields: &FieldSet) {
    e.len(fields.len());
    for (name, values) in fields.iter() {
        e.bytes(name.as_bytes());
        e.len(values.len());
        for value in values {
            e.bytes(value.as_bytes());
        }
    }
}

/// One entry's fields, as [`encode_fields`] wrote them.
fn decode_entry(d: &mut cache::Decoder<'_>) -> Option<FieldSet> {
    let count = d.count(8)?;
    let mut set = FieldSet::with_capacity(count);
    for _ in 0..count {
        let name = d.string()?;
        for _ in 0..d.count(4)? {
            set.insert(name, d.string()?);
        }
    }
    Some(set)
}

/// The current fields of the branch log of every cached key, at one commit of the branch.
/// A key without a log has empty fields: "no metadata" is cached too.
struct BranchCache {
    head: String,
    /// Hash levels of the branch at `head` (see [`hash_levels`]).
    levels: usize,
    /// Sibling tips known to be contained in `head`.
    merged: Vec<String>,
    fields: Snapshot,
}

impl BranchCache {
    fn empty(head: &str) -> BranchCache {
        BranchCache {
            head: head.to_string(),
            levels: 2,
            merged: Vec::new(),
            fields: Snapshot::default(),
        }
    }

    /// Moves the cache to `head`: returns it with the logs that differ dropped (keys not
    /// `wanted` now) or listed for re-reading with their new blob ids. None when the cache
    /// cannot be carried over.
    fn advance(
        mut self,
        repo: &Repo,
        head: &str,
        wanted: &HashSet<&AnnexKey>,
    ) -> Option<(BranchCache, Vec<(AnnexKey, String)>)> {
        // Fails when the old commit is gone (e.g. pruned after `git annex forget`) or is not
        // a commit of this repository at all (a cache copied from elsewhere).
        let diff = repo
            .git_output(&["diff-tree", "-r", "-z", "--no-renames", &self.head, head])
            .ok()?;
        let mut reread = Vec::new();
        let mut items = diff.split(|&b| b == 0).filter(|i| !i.is_empty());
        while let Some(meta) = items.next() {
            let path = items.next()?;
            if path == b"difference.log" {
                return None;
            }
            // `:<old mode> <new mode> <old oid> <new oid> <status>`
            let new_oid = std::str::from_utf8(meta.split(|&b| b == b' ').nth(3)?).ok()?;
            let Some(key) = key_of_met_path(path, self.levels) else {
                continue;
            };
            if !self.fields.knows(&key) {
                continue;
            }
            if !wanted.contains(&key) {
                self.fields.drop_key(&key);
            } else if new_oid.bytes().all(|b| b == b'0') {
                self.fields.set(key, FieldSet::new());
            } else {
                // Until it is re-read below, the old entry must not answer.
                self.fields.drop_key(&key);
                reread.push((key, new_oid.to_string()));
            }
        }
        self.head = head.to_string();
        Some((self, reread))
    }

    fn load(repo: &Repo) -> Option<BranchCache> {
        let body = cache::load(repo, cache::Kind::Metadata)?;
        let mut d = cache::Decoder::new(&body);
        let head = d.string()?.to_string();
        let levels = usize::from(d.u8()?);
        let merged = (0..d.count(4)?)
            .map(|_| d.string().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        let count = d.count(8)?;
        // The entries stay in the body as they are; only their offsets are kept.
        let skip = body.len() - d.remaining();
        let mut entries = body;
        entries.drain(..skip);
        let fields = Snapshot::index_body(entries, count)?;
        Some(BranchCache {
            head,
            levels,
            merged,
            fields,
        })
    }

    fn store(&self, repo: &Repo) {
        let mut e = cache::Encoder::default();
        e.bytes(self.head.as_bytes());
        e.u8(u8::try_from(self.levels).expect("1 or 2 levels"));
        e.len(self.merged.len());
        for tip in &self.merged {
            e.bytes(tip.as_bytes());
        }
        self.fields.encode_entries(&mut e);
        cache::store(repo, cache::Kind::Metadata, e);
    }

    fn remove(repo: &Repo) {
        cache::remove(repo, cache::Kind::Metadata);
    }
}

/// The key whose log is at `path` (`<hash dirs>/<keyFile>.log.met`), if `path` is where that
/// key's log lives: a stray file under another hash directory is no key's log.
fn key_of_met_path(path: &[u8], levels: usize) -> Option<AnnexKey> {
    let file = path.rsplit(|&b| b == b'/').next()?;
    let file = file.strip_suffix(b".log.met")?;
    let key = String::from_utf8(metalog::key_from_file(file)).ok()?;
    (metalog::met_path_levels(&key, levels).as_bytes() == path).then(|| AnnexKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field_set() -> impl Strategy<Value = FieldSet> {
        let name = prop::sample::select(vec!["bpm", "crate", "rating", "tag", "title"]);
        prop::collection::vec((name, "[ab]{0,2}"), 0..8)
            .prop_map(|pairs| pairs.into_iter().collect())
    }

    /// A snapshot whose entries come from an encoded cache body, as a loaded cache has them.
    fn encoded(entries: &[(AnnexKey, FieldSet)]) -> Snapshot {
        let mut e = cache::Encoder::default();
        for (key, fields) in entries {
            e.bytes(key.as_str().as_bytes());
            encode_fields(&mut e, fields);
        }
        Snapshot::index_body(e.as_slice().to_vec(), entries.len()).expect("parses")
    }

    proptest! {
        /// Comparing on the encoded entry agrees with comparing decoded sets, field by field,
        /// and decoding gives back the set that was encoded.
        #[test]
        fn encoded_entries_answer_like_decoded_sets(
            current in field_set(),
            wanted in field_set(),
            managed in prop::sample::subsequence(vec!["bpm", "crate", "rating", "tag", "title"], 0..5),
        ) {
            let key = AnnexKey::new("SHA256E-s1--k");
            let snapshot = encoded(&[(key.clone(), current.clone()), (AnnexKey::new("other"), wanted.clone())]);
            let names = managed.iter().copied();
            prop_assert_eq!(
                snapshot.matches(&key, &wanted, names.clone()),
                same_fields(&current, &wanted, names.clone())
            );
            prop_assert_eq!(snapshot.fields(&key), Some(current.clone()).filter(|f| !f.is_empty()));
            // A key the snapshot does not hold has no metadata.
            let absent = AnnexKey::new("absent");
            prop_assert_eq!(
                snapshot.matches(&absent, &wanted, names.clone()),
                same_fields(&FieldSet::new(), &wanted, names)
            );
        }
    }

    #[test]
    fn decoded_answers_shadow_and_dropped_entries_vanish() {
        let (a, b) = (AnnexKey::new("K-a"), AnnexKey::new("K-b"));
        let one: FieldSet = [("rating", "5")].into_iter().collect();
        let two: FieldSet = [("rating", "4")].into_iter().collect();
        let mut snapshot = encoded(&[(a.clone(), one.clone()), (b.clone(), one.clone())]);
        snapshot.set(a.clone(), two.clone());
        snapshot.drop_key(&b);
        // A re-read entry replaces a dropped one.
        let c = AnnexKey::new("K-c");
        snapshot.drop_key(&c);
        snapshot.append(&c, &two);
        snapshot.sort_index();
        assert_eq!(snapshot.fields(&c), Some(two.clone()));
        assert_eq!(snapshot.fields(&a), Some(two.clone()));
        assert!(!snapshot.knows(&b));
        assert!(snapshot.matches(&a, &two, ["rating"].into_iter()));
        assert!(!snapshot.matches(&a, &one, ["rating"].into_iter()));
        // What a store writes back reads as the same answers.
        let mut e = cache::Encoder::default();
        snapshot.encode_entries(&mut e);
        let mut d = cache::Decoder::new(e.as_slice());
        let n = d.len().unwrap();
        let again = Snapshot::index_body(d.rest().to_vec(), n).unwrap();
        assert_eq!(again.fields(&a), Some(two.clone()));
        assert!(!again.knows(&b));
        // A body naming one key twice is not one the store wrote.
        assert_eq!(n, 2);
        assert_eq!(again.fields(&c), Some(two.clone()));
        assert!(Snapshot::index_body([d.rest(), d.rest()].concat(), 2 * n).is_none());
    }
}
