//! Persistent caches for the two bulk reads (index → keys, git-annex branch → metadata), kept
//! in `<common dir>/music-commander/`.
//!
//! A cache may only ever save work, never change an answer. So every entry is addressed by
//! content — a blob id (key map) or a commit id (metadata) — which makes a file copied from
//! another repository (`cp -a`, a clone) harmless: an id means the same bytes everywhere. What
//! is not addressed by content is guarded here: a file is used only if it carries our magic,
//! format number, the fingerprint of the parsing code that produced it, and a checksum over
//! every byte; anything else (missing, truncated, corrupt, written by another build) is
//! ignored and rebuilt. Files are replaced atomically (temp file + rename), so concurrent runs
//! see either the old or the new file, and the last writer wins.

use std::path::PathBuf;

use crate::annex::Repo;

/// Whether a read may use the persistent caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Freshness {
    /// Reuse cached results that are still valid, and update the cache.
    #[default]
    UseCache,
    /// Ignore the cache, read everything from git, and rewrite the cache from that.
    FromScratch,
}

const MAGIC: &[u8; 8] = b"mc-cache";
/// Bump when the layout of any cache body changes.
const FORMAT: u32 = 1;
/// Cached values are the output of this code: a build whose parsing differs must not trust
/// them, and a forgotten version bump must not be able to cause that. Any edit to these files
/// (comments included) therefore invalidates existing caches — a one-time full read.
const CODE_STAMP: u64 = fingerprint(&[
    include_bytes!("cache.rs"),
    include_bytes!("keys.rs"),
    include_bytes!("metalog.rs"),
    include_bytes!("snapshot/mod.rs"),
    include_bytes!("snapshot/fresh.rs"),
    include_bytes!("snapshot/cached.rs"),
]);
const HEADER_LEN: usize = MAGIC.len() + 4 + 8 + 1;
const CHECKSUM_LEN: usize = 8;

/// Which cache a file holds; a file renamed to the other cache's name is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    KeyMap = 1,
    Metadata = 2,
}

impl Kind {
    fn file_name(self) -> &'static str {
        match self {
            Kind::KeyMap => "keys.cache",
            Kind::Metadata => "metadata.cache",
        }
    }
}

fn path(repo: &Repo, kind: Kind) -> PathBuf {
    repo.common_dir
        .join("music-commander")
        .join(kind.file_name())
}

/// The body of the cache file, if there is a valid one.
pub(crate) fn load(repo: &Repo, kind: Kind) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path(repo, kind)).ok()?;
    unwrap(bytes, kind)
}

/// Writes the cache file; failures are ignored because the cache only ever saves work (a
/// read-only repository is still readable).
pub(crate) fn store(repo: &Repo, kind: Kind, body: Encoder) {
    let bytes = wrap(body, kind);
    let file = path(repo, kind);
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, &bytes).is_ok() {
        let _ = tmp.persist(&file);
    }
}

/// Deletes the cache file, if any.
pub(crate) fn remove(repo: &Repo, kind: Kind) {
    let _ = std::fs::remove_file(path(repo, kind));
}

fn header(kind: Kind) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    h[12..20].copy_from_slice(&CODE_STAMP.to_le_bytes());
    h[20] = kind as u8;
    h
}

fn wrap(body: Encoder, kind: Kind) -> Vec<u8> {
    // In place: a cache body can be tens of megabytes, and a second copy would be the run's
    // peak memory.
    let mut bytes = body.0;
    bytes.reserve_exact(HEADER_LEN + CHECKSUM_LEN);
    bytes.splice(0..0, header(kind));
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    bytes
}

fn unwrap(mut bytes: Vec<u8>, kind: Kind) -> Option<Vec<u8>> {
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN || bytes[..HEADER_LEN] != header(kind) {
        return None;
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if checksum(content).to_le_bytes() != sum {
        return None;
    }
    bytes.truncate(bytes.len() - CHECKSUM_LEN);
    bytes.drain(..HEADER_LEN);
    Some(bytes)
}

pub(crate) use crate::fingerprint::checksum;

/// FNV-1a over the files, at compile time.
const fn fingerprint(files: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut f = 0;
    while f < files.len() {
        let mut i = 0;
        while i < files[f].len() {
            h ^= files[f][i] as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        f += 1;
    }
    h
}

/// Builds a cache body: little-endian integers and length-prefixed byte strings.
#[derive(Default)]
pub(crate) struct Encoder(Vec<u8>);

impl Encoder {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// Lengths are u32: no single string we cache comes near 4 GiB, and counts are checked.
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("cache item count fits in u32"));
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    /// Bytes as they are, without a length: for framing a body (magic, checksum) or copying
    /// an entry that was encoded before.
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// Room for `n` more bytes.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.0.reserve(n);
    }

    /// Empties the buffer, keeping its capacity (a scratch encoder reused per file).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// Reads what [`Encoder`] wrote; every getter returns None at the end of the input, so a body
/// that does not parse is rejected as a whole by the caller.
#[derive(Clone, Copy)]
pub(crate) struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Decoder(body)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(v)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let (v, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*v))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        let (v, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*v))
    }

    pub(crate) fn len(&mut self) -> Option<usize> {
        self.u32().map(|n| n as usize)
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        if n > self.0.len() {
            return None;
        }
        let (v, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(v)
    }

    pub(crate) fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// A count of items that each take at least `min_size` bytes: rejects counts the rest of
    /// the body cannot hold before anything is allocated for them.
    pub(crate) fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.len()?;
        (n.saturating_mul(min_size) <= self.0.len()).then_some(n)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many bytes are left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.0.len()
    }

    /// What is left to read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Encoder {
        let mut e = Encoder::default();
        e.u8(7);
        e.bytes(b"hello");
        e.u32(42);
        e
    }

    #[test]
    fn round_trip() {
        let bytes = wrap(body(), Kind::Metadata);
        let inner = unwrap(bytes, Kind::Metadata).unwrap();
        let mut d = Decoder::new(&inner);
        assert_eq!(d.u8(), Some(7));
        assert_eq!(d.string(), Some("hello"));
        assert_eq!(d.u32(), Some(42));
        assert!(d.is_empty());
        assert_eq!(d.u8(), None);
    }

    #[test]
    fn rejects_damage() {
        let good = wrap(body(), Kind::Metadata);
        assert!(unwrap(good.clone(), Kind::KeyMap).is_none(), "other kind");
        for cut in 0..good.len() {
            assert!(
                unwrap(good[..cut].to_vec(), Kind::Metadata).is_none(),
                "cut {cut}"
            );
        }
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                assert!(unwrap(bad, Kind::Metadata).is_none(), "flip {at}.{bit}");
            }
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(unwrap(longer, Kind::Metadata).is_none());
    }

    #[test]
    fn decoder_stops_at_truncated_strings() {
        let mut e = Encoder::default();
        e.u32(1000);
        e.0.extend_from_slice(b"short");
        let mut d = Decoder::new(&e.0);
        assert_eq!(d.bytes(), None);
        let mut d = Decoder::new(&e.0);
        assert_eq!(d.count(1), None);
    }
}
