//! Cheap "has this file changed?" markers, for skipping work that only a changed input needs.

use std::path::Path;

/// The file's device, inode, size and modification time (nanoseconds), as bytes; one zero
/// byte when it does not exist. Any write through the file system changes at least the
/// time; a rename over it changes the inode.
pub(crate) fn file(path: &Path) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => [
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect(),
        Err(_) => vec![0],
    }
}

/// Detects corruption, not tampering: each step is a bijection of the state for a fixed word
/// and of the word for a fixed state, so any single changed word changes the result.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = (h ^ u64::from_le_bytes(word.try_into().expect("8 bytes"))).wrapping_mul(K);
        h ^= h >> 29;
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^ (h >> 29)
}
