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
    read_with_state(repo, keys, freshness).map(|(fields, _)| fields)
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

/// [`read_with`], also saying which [`RepoState`] the answers come from.
pub fn read_with_state(
    repo: &Repo,
    keys: &[AnnexKey],
    freshness: Freshness,
) -> Result<(HashMap<AnnexKey, FieldSet>, RepoState)> {
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
    read_tips(repo, keys, freshness, &journal, &tips).map(|fields| (fields, state))
}

fn read_tips(
    repo: &Repo,
    keys: &[AnnexKey],
    freshness: Freshness,
    journal: &Journal,
    tips: &[branch::Tip],
) -> Result<HashMap<AnnexKey, FieldSet>> {
    let Some(head) = tips
        .iter()
        .find(|t| t.name == BRANCH)
        .map(|t| t.oid.clone())
    else {
        // No branch yet (a fresh clone): nothing to cache.
        return read(repo, keys);
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
            return read(repo, keys);
        }
        dirty = true;
    }
    let merged: Vec<String> = siblings.iter().map(|s| s.to_string()).collect();

    let moved = cached.as_ref().is_some_and(|c| c.head != head);

    let mut unique: HashSet<&AnnexKey> = HashSet::with_capacity(keys.len());
    let wanted: Vec<&AnnexKey> = keys.iter().filter(|k| unique.insert(k)).collect();
    let (mut branch, reread, fresh) = match cached {
        Some(c) if c.head == head => (c, Vec::new(), false),
        Some(c) => match c.advance(repo, &head, &unique) {
            Some((c, reread)) => (c, reread, false),
            None => (BranchCache::empty(&head), Vec::new(), true),
        },
        None => (BranchCache::empty(&head), Vec::new(), true),
    };
    dirty |= moved || fresh;

    let missing: Vec<&AnnexKey> = wanted
        .iter()
        .copied()
        .filter(|k| !branch.fields.contains_key(*k))
        .collect();
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
                None => {
                    branch.fields.insert(key.clone(), FieldSet::new());
                }
            }
        }
        let answers = cat.get_many(&specs, u64::MAX)?;
        cat.finish()?;
        for (key, answer) in targets.into_iter().zip(answers) {
            let fields = match answer {
                Blob::Content(log) => metalog::current(&log),
                Blob::Missing | Blob::TooLarge => FieldSet::new(),
            };
            branch.fields.insert(key, fields);
        }
    }
    if dirty {
        branch.merged = merged;
        branch.store(repo);
    }

    // Every key asked for is cached by now. Usually the cache holds no other key: then it
    // becomes the answer as it is.
    let mut out = if branch.fields.len() == wanted.len() {
        let mut out = std::mem::take(&mut branch.fields);
        out.retain(|_, fields| !fields.is_empty());
        out
    } else {
        let mut out = HashMap::with_capacity(wanted.len());
        for key in &wanted {
            if let Some((key, fields)) = branch.fields.remove_entry(*key)
                && !fields.is_empty()
            {
                out.insert(key, fields);
            }
        }
        out
    };
    if !journal.is_empty() {
        for key in wanted {
            let path = metalog::met_path_levels(key.as_str(), branch.levels);
            if let Some(log) = journal.read(&path, false)? {
                let fields = metalog::current(&log);
                if fields.is_empty() {
                    out.remove(key);
                } else {
                    out.insert(key.clone(), fields);
                }
            }
        }
    }
    Ok(out)
}

/// The current fields of the branch log of every cached key, at one commit of the branch.
/// A key without a log has empty fields: "no metadata" is cached too.
struct BranchCache {
    head: String,
    /// Hash levels of the branch at `head` (see [`hash_levels`]).
    levels: usize,
    /// Sibling tips known to be contained in `head`.
    merged: Vec<String>,
    fields: HashMap<AnnexKey, FieldSet>,
}

impl BranchCache {
    fn empty(head: &str) -> BranchCache {
        BranchCache {
            head: head.to_string(),
            levels: 2,
            merged: Vec::new(),
            fields: HashMap::new(),
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
            if !self.fields.contains_key(&key) {
                continue;
            }
            if !wanted.contains(&key) {
                self.fields.remove(&key);
            } else if new_oid.bytes().all(|b| b == b'0') {
                self.fields.insert(key, FieldSet::new());
            } else {
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
        let chunks = (0..d.count(4)?)
            .map(|_| d.bytes())
            .collect::<Option<Vec<_>>>()?;
        if !d.is_empty() {
            return None;
        }
        // Building the field sets is all allocation; the chunks decode in parallel.
        let decoded: Vec<Option<HashMap<AnnexKey, FieldSet>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .iter()
                .map(|chunk| scope.spawn(|| decode_fields(chunk)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("cache decoder panicked"))
                .collect()
        });
        let mut decoded = decoded.into_iter().collect::<Option<Vec<_>>>()?;
        decoded.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let mut parts = decoded.into_iter();
        let mut fields = parts.next().unwrap_or_default();
        for part in parts {
            fields.extend(part);
        }
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
        let mut chunks: Vec<cache::Encoder> = (0..DECODE_THREADS)
            .map(|_| cache::Encoder::default())
            .collect();
        let per_chunk = self.fields.len().div_ceil(DECODE_THREADS).max(1);
        for (i, chunk) in self
            .fields
            .iter()
            .collect::<Vec<_>>()
            .chunks(per_chunk)
            .enumerate()
        {
            let c = &mut chunks[i];
            c.len(chunk.len());
            for (key, fields) in chunk {
                c.bytes(key.as_str().as_bytes());
                c.len(fields.len());
                for (name, values) in fields.iter() {
                    c.bytes(name.as_bytes());
                    c.len(values.len());
                    for value in values {
                        c.bytes(value.as_bytes());
                    }
                }
            }
        }
        let chunks: Vec<cache::Encoder> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        e.len(chunks.len());
        for chunk in &chunks {
            e.bytes(chunk.as_slice());
        }
        cache::store(repo, cache::Kind::Metadata, e);
    }

    fn remove(repo: &Repo) {
        cache::remove(repo, cache::Kind::Metadata);
    }
}

/// The metadata cache is written in this many chunks, decoded by as many threads.
const DECODE_THREADS: usize = 2;

/// One chunk of the metadata cache: a count, then per key its fields and their values.
fn decode_fields(chunk: &[u8]) -> Option<HashMap<AnnexKey, FieldSet>> {
    let mut d = cache::Decoder::new(chunk);
    let n = d.count(8)?;
    let mut fields = HashMap::with_capacity(n);
    for _ in 0..n {
        let key = AnnexKey::new(d.string()?);
        let count = d.count(8)?;
        let mut set = FieldSet::with_capacity(count);
        for _ in 0..count {
            let name = d.string()?;
            for _ in 0..d.count(4)? {
                set.insert(name, d.string()?);
            }
        }
        fields.insert(key, set);
    }
    d.is_empty().then_some(fields)
}

/// The key whose log is at `path` (`<hash dirs>/<keyFile>.log.met`), if `path` is where that
/// key's log lives: a stray file under another hash directory is no key's log.
fn key_of_met_path(path: &[u8], levels: usize) -> Option<AnnexKey> {
    let file = path.rsplit(|&b| b == b'/').next()?;
    let file = file.strip_suffix(b".log.met")?;
    let key = String::from_utf8(metalog::key_from_file(file)).ok()?;
    (metalog::met_path_levels(&key, levels).as_bytes() == path).then(|| AnnexKey::new(key))
}
