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
