//! A database in WAL mode that lies in a folder this process cannot write.
//!
//! Even a read-only SQLite connection to a WAL database must create the `-shm` index (and
//! usually the `-wal` file) beside it, so in a read-only folder (a backup, a read-only mount,
//! another user's home) the open fails with "attempt to write a readonly database". When no
//! `-wal` file exists, every committed transaction is in the main file and no writer has it
//! open (a writer keeps `-wal` while connected), so the file can be read as it is with
//! SQLite's `immutable=1`, which takes no locks and creates nothing. With a `-wal` file the
//! main file alone is stale: that case is an error that says why.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Offsets 18 and 19 of the SQLite header: file format write/read versions, 2 for WAL.
const WAL_VERSION_OFFSET: usize = 18;

/// Whether the database's header says WAL mode.
pub(super) fn is_wal(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; WAL_VERSION_OFFSET + 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && header[WAL_VERSION_OFFSET..] == [2, 2]
}

pub(super) fn wal_file(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push("-wal");
    PathBuf::from(name)
}

/// Whether a failed open may be retried with `immutable=1`: WAL mode and no `-wal` file,
/// so the main file holds every committed transaction.
pub(super) fn may_read_immutable(path: &Path) -> bool {
    is_wal(path) && !wal_file(path).exists()
}

/// The detail of a read-only error for a WAL database, if it is one.
pub(super) fn read_only_detail(path: &Path) -> Option<String> {
    is_wal(path).then(|| {
        let pending = if wal_file(path).exists() {
            ", and its -wal file holds writes that are not in the database file yet"
        } else {
            ""
        };
        format!(
            "the database is in WAL mode in a folder (or beside -wal/-shm files) this user \
             cannot write{pending}; \
             SQLite must create its -shm file beside it even to read it \
             (make the folder writable, or copy the database with its -wal file somewhere writable)"
        )
    })
}

/// `file:<path>?immutable=1`, the path percent-encoded so that `?`, `#` and `%` in a name
/// stay part of it.
pub(super) fn immutable_uri(path: &Path) -> OsString {
    let mut uri = b"file:".to_vec();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b);
        } else {
            uri.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    uri.extend_from_slice(b"?immutable=1");
    OsString::from_vec(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_what_sqlite_would_read_as_syntax() {
        assert_eq!(
            immutable_uri(Path::new("/a b/x?y#z%.sqlite")),
            OsString::from("file:/a%20b/x%3Fy%23z%25.sqlite?immutable=1")
        );
    }
}
