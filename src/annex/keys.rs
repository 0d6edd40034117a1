//! Which annex key each file in the work tree points at, read from the git index (locked and
//! unlocked files alike). Paths are compared in NFC, as Mixxx and the filesystem may differ.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::annex::Repo;
use crate::annex::adjusted;
use crate::annex::cache::{self, Freshness};
use crate::annex::metalog;
use crate::annex::repo::{Blob, CatFile};
use crate::error::{Error, Result};
use crate::model::nfc::nfc;
use crate::model::{AnnexKey, RepoPath};

/// git-annex never treats a larger regular file as an unlocked pointer file.
const MAX_POINTER_SIZE: u64 = 32 * 1024;

/// What the index says a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An annexed file (locked or unlocked, content present or not, committed or only staged).
    Annexed(AnnexKey),
    /// A file tracked by git but not annexed.
    Plain,
    /// An annexed file whose key is not UTF-8 (e.g. a WORM key made from a Latin-1 file name).
    /// It has metadata in git-annex, but we cannot address it through the JSON batch protocol,
    /// so it is reported rather than synced. Holds the raw key bytes.
    NonUtf8Key(Vec<u8>),
}

/// Every path in the index (optionally filtered), with what it is.
#[derive(Debug, Default)]
pub struct KeyMap {
    entries: HashMap<RepoPath, Entry>,
    /// NFC form → index spelling, built on the first lookup that misses.
    nfc: OnceLock<HashMap<RepoPath, RepoPath>>,
}

impl KeyMap {
    /// Reads the index in one bulk pass (`git ls-files -s -z` + one `git cat-file --batch`);
    /// in an adjusted branch also the files of the branch it adjusts that the index hides.
    /// Only paths for which `wanted` is true are resolved to keys (and kept).
    ///
    /// Conflicted paths (only stages 1–3 in the index) are left out, as git-annex does.
    /// Neither reads nor writes the persistent cache; see [`KeyMap::read_with`].
    pub fn read(repo: &Repo, wanted: &dyn Fn(&RepoPath) -> bool) -> Result<KeyMap> {
        resolve(repo, wanted, &mut BlobCache::default())
    }

    /// [`KeyMap::read`] through the persistent blob cache: a symlink or pointer blob is
    /// content-addressed, so what it resolved to once holds forever, and only blobs never seen
    /// before go to `git cat-file`. `FromScratch` resolves every blob again and rewrites the
    /// cache.
    pub fn read_with(
        repo: &Repo,
        wanted: &dyn Fn(&RepoPath) -> bool,
        freshness: Freshness,
    ) -> Result<KeyMap> {
        let mut cache = match freshness {
            Freshness::UseCache => BlobCache::load(repo).unwrap_or_default(),
            Freshness::FromScratch => BlobCache::default(),
        };
        let map = resolve(repo, wanted, &mut cache)?;
        if cache.changed() || freshness == Freshness::FromScratch {
            cache.store(repo);
        }
        Ok(map)
    }

    /// Looks up a path exactly, else by its Unicode NFC form (a file committed from macOS may
    /// be NFD in the index while Mixxx stored NFC, or the other way round). Exact bytes come
    /// first: two files whose names differ only in normalisation are two files. Returns the
    /// path as the index spells it.
    pub fn get(&self, path: &RepoPath) -> Option<(&RepoPath, &Entry)> {
        if let Some(found) = self.entries.get_key_value(path) {
            return Some(found);
        }
        let wanted = match nfc(path.as_bytes()) {
            Some(composed) => {
                let composed = RepoPath::from_bytes(composed);
                if let Some(found) = self.entries.get_key_value(&composed) {
                    return Some(found);
                }
                composed
            }
            None => path.clone(),
        };
        // Only index paths that are not NFC themselves (rare: names committed from macOS), so
        // a lookup miss — a track whose file is gone — costs no pass over 100,000 paths.
        let index = self.nfc.get_or_init(|| {
            let mut index: HashMap<RepoPath, RepoPath> = HashMap::new();
            for path in self.entries.keys() {
                let Some(composed) = nfc(path.as_bytes()) else {
                    continue;
                };
                // Two index paths with one NFC form: pick the smaller, so the answer does
                // not depend on hash order.
                index
                    .entry(RepoPath::from_bytes(composed))
                    .and_modify(|p| {
                        if path < p {
                            *p = path.clone();
                        }
                    })
                    .or_insert_with(|| path.clone());
            }
            index
        });
        self.entries.get_key_value(index.get(&wanted)?)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RepoPath, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The index listing, resolved through `cache`, which learns every blob it did not know and
/// marks which known blobs the index still uses.
fn resolve(
    repo: &Repo,
    wanted: &dyn Fn(&RepoPath) -> bool,
    cache: &mut BlobCache,
) -> Result<KeyMap> {
    let listing = repo.git_output(&["ls-files", "--stage", "-z"])?;
    let original = adjusted::original_tree(repo)?;
    let hidden = match &original {
        Some(tree) => hidden_records(&listing, tree)?,
        None => Vec::new(),
    };
    let mut entries: HashMap<RepoPath, Entry> = HashMap::new();
    let mut paths = Vec::new();
    let mut specs = Vec::new();
    let index = listing
        .split(|&b| b == 0)
        .filter(|r| !r.is_empty())
        .map(parse_stage_record);
    for record in index.chain(hidden.into_iter().map(Ok)) {
        let StageRecord { mode, object, path } = record?;
        let Some(object) = object else {
            continue;
        };
        let may_be_annexed = matches!(mode, b"120000" | b"100644" | b"100755");
        let known = if may_be_annexed {
            cache.lookup(object)
        } else {
            None
        };
        let path = RepoPath::from_bytes(path);
        if !wanted(&path) {
            continue;
        }
        match known {
            Some(entry) => {
                entries.insert(path, entry.clone());
            }
            None if may_be_annexed => {
                specs.push(object.to_vec());
                paths.push(path);
            }
            None => {
                entries.insert(path, Entry::Plain);
            }
        }
    }

    if !specs.is_empty() {
        let mut cat = CatFile::start(repo)?;
        let blobs = cat.get_many(&specs, MAX_POINTER_SIZE)?;
        cat.finish()?;
        entries.reserve(paths.len());
        for ((path, object), blob) in paths.into_iter().zip(specs).zip(blobs) {
            let entry = match blob {
                Blob::Content(target) => classify(&target),
                Blob::TooLarge => Entry::Plain,
                // Not a property of the content (the object may arrive later): not cached.
                Blob::Missing => {
                    entries.insert(path, Entry::Plain);
                    continue;
                }
            };
            cache.learn(object, entry.clone());
            entries.insert(path, entry);
        }
    }
    Ok(KeyMap {
        entries,
        nfc: OnceLock::new(),
    })
}

/// Blob id (hex, as git prints it) → what the blob says, for every symlink / small-file blob
/// resolved before. Kept to the blobs the index still uses, so it cannot grow without bound.
#[derive(Default)]
struct BlobCache {
    /// The entry, and whether the current index uses the blob.
    known: HashMap<Box<[u8]>, (Entry, bool)>,
    used: usize,
    learned: bool,
}

impl BlobCache {
    fn lookup(&mut self, object: &[u8]) -> Option<&Entry> {
        let (entry, used) = self.known.get_mut(object)?;
        if !*used {
            *used = true;
            self.used += 1;
        }
        Some(entry)
    }

    fn learn(&mut self, object: Vec<u8>, entry: Entry) {
        if self.known.insert(object.into(), (entry, true)).is_none() {
            self.used += 1;
        }
        self.learned = true;
    }

    /// Whether the file on disk no longer matches: blobs were learned or fell out of use.
    fn changed(&self) -> bool {
        self.learned || self.used != self.known.len()
    }

    fn load(repo: &Repo) -> Option<BlobCache> {
        let body = cache::load(repo, cache::Kind::KeyMap)?;
        let mut d = cache::Decoder::new(&body);
        let n = d.count(6)?;
        let mut known = HashMap::with_capacity(n);
        for _ in 0..n {
            let object = d.bytes()?;
            let entry = match d.u8()? {
                0 => Entry::Plain,
                1 => Entry::Annexed(AnnexKey::new(d.string()?)),
                2 => Entry::NonUtf8Key(d.bytes()?.to_vec()),
                _ => return None,
            };
            known.insert(object.into(), (entry, false));
        }
        d.is_empty().then_some(BlobCache {
            known,
            used: 0,
            learned: false,
        })
    }

    fn store(&self, repo: &Repo) {
        let mut e = cache::Encoder::default();
        e.len(self.used);
        for (object, (entry, _)) in self.known.iter().filter(|(_, (_, used))| *used) {
            e.bytes(object);
            match entry {
                Entry::Plain => e.u8(0),
                Entry::Annexed(key) => {
                    e.u8(1);
                    e.bytes(key.as_str().as_bytes());
                }
                Entry::NonUtf8Key(key) => {
                    e.u8(2);
                    e.bytes(key);
                }
            }
        }
        cache::store(repo, cache::Kind::KeyMap, e);
    }
}

/// The files of the branch an adjusted branch adjusts (its tree listing) that the index
/// does not show, e.g. those `--hide-missing` hides; the index wins for the others.
fn hidden_records<'a>(listing: &'a [u8], tree: &'a [u8]) -> Result<Vec<StageRecord<'a>>> {
    let mut shown = std::collections::HashSet::new();
    for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        shown.insert(parse_stage_record(record)?.path);
    }
    let mut hidden = Vec::new();
    for record in tree.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        if let Some(adjusted::TreeRecord { mode, object, path }) =
            adjusted::parse_tree_record(record)?
            && !shown.contains(path)
        {
            hidden.push(StageRecord {
                mode,
                object: Some(object),
                path,
            });
        }
    }
    Ok(hidden)
}

/// One `git ls-files --stage` record: `<mode> SP <object> SP <stage> TAB <path>`.
struct StageRecord<'a> {
    mode: &'a [u8],
    /// None for a conflicted path (stage ≠ 0).
    object: Option<&'a [u8]>,
    path: &'a [u8],
}

fn parse_stage_record(record: &[u8]) -> Result<StageRecord<'_>> {
    let bad = || {
        Error::git(
            "cannot list the work tree",
            crate::annex::Git::new()
                .args(["ls-files", "--stage", "-z"])
                .protocol(format!(
                    "unexpected line {:?}",
                    String::from_utf8_lossy(record)
                )),
        )
    };
    let tab = record.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
    let mut fields = record[..tab].split(|&b| b == b' ');
    let (Some(mode), Some(object), Some(stage)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    Ok(StageRecord {
        mode,
        object: (stage == b"0").then_some(object),
        path: &record[tab + 1..],
    })
}

/// A symlink target or pointer file: annexed iff its first line names `/annex/objects/`.
pub(crate) fn classify(target: &[u8]) -> Entry {
    let first_line = target.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(at) = find(first_line, b"/annex/objects/") else {
        return Entry::Plain;
    };
    let after = &first_line[at + b"/annex/objects/".len()..];
    let file = after.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let key = metalog::key_from_file(file);
    if !looks_like_key(&key) {
        return Entry::Plain;
    }
    match String::from_utf8(key) {
        Ok(key) => Entry::Annexed(AnnexKey::new(key)),
        Err(e) => Entry::NonUtf8Key(e.into_bytes()),
    }
}

/// git-annex ignores links whose last component does not parse as `BACKEND-…--name` (or
/// `BACKEND--name`).
fn looks_like_key(key: &[u8]) -> bool {
    match key.iter().position(|&b| b == b'-') {
        Some(dash) => dash > 0 && find(&key[dash..], b"--").is_some(),
        None => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_targets() {
        let key = |s: &str| Entry::Annexed(AnnexKey::new(s));
        assert_eq!(
            classify(b"../../.git/annex/objects/Xx/Yy/SHA256E-s3--ab.mp3/SHA256E-s3--ab.mp3"),
            key("SHA256E-s3--ab.mp3")
        );
        assert_eq!(
            classify(b"/annex/objects/URL--http&c%%e.com%a&s20b\n"),
            key("URL--http://e.com/a%20b")
        );
        assert_eq!(classify(b"just text\n/annex/objects/SHA1--x"), Entry::Plain);
        assert_eq!(classify(b"../.git/annex/objects/notakey"), Entry::Plain);
        assert_eq!(
            classify(b"/annex/objects/WORM-s1-m1--caf\xe9"),
            Entry::NonUtf8Key(b"WORM-s1-m1--caf\xe9".to_vec())
        );
    }

    #[test]
    fn nfc_lookup() {
        let nfd = RepoPath::from_bytes("Cafe\u{301}.mp3");
        let mut map = KeyMap::default();
        map.entries.insert(nfd.clone(), Entry::Plain);
        let (found, _) = map.get(&RepoPath::from_bytes("Café.mp3")).unwrap();
        assert_eq!(found, &nfd);
        assert!(map.get(&RepoPath::from_bytes("Cafe.mp3")).is_none());
    }

    #[test]
    fn exact_bytes_win_over_nfc() {
        let nfd = RepoPath::from_bytes("Cafe\u{301}.mp3");
        let nfc = RepoPath::from_bytes("Caf\u{e9}.mp3");
        let mut map = KeyMap::default();
        map.entries
            .insert(nfd.clone(), Entry::Annexed(AnnexKey::new("K--nfd")));
        map.entries
            .insert(nfc.clone(), Entry::Annexed(AnnexKey::new("K--nfc")));
        assert_eq!(map.get(&nfd).unwrap().0, &nfd);
        assert_eq!(map.get(&nfc).unwrap().0, &nfc);
    }
}
