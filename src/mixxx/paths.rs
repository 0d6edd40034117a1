//! Mapping Mixxx's absolute track locations onto repository paths.
//!
//! Paths are handled as lists of byte components: a location need not be UTF-8, and
//! comparing whole components (not string prefixes) keeps `/music2/x` out of `/music`.
//! The root is compared NFC-normalized, because macOS hands Mixxx decomposed (NFD) names
//! while git and Linux tools mostly produce NFC. The path below the root is returned as
//! Mixxx spells it: the key map matches it byte for byte first and by NFC only as the
//! fallback, so two files whose names differ only in normalisation stay two files.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::model::RepoPath;

/// Why a location could not be mapped into the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// The location lies outside the music root (or is the root itself, or is not absolute).
    OutsideRoot,
}

/// A path split into normalized components (no empty, `.` or `..` components).
type Components = Vec<Vec<u8>>;

/// Maps locations by stripping the music root. Tries the configured spelling, then the
/// canonical (symlink-resolved) one; compares the root Unicode NFC-normalized.
pub struct PathMapper {
    /// The root as configured and, when different, as the file system resolves it; NFC.
    roots: Vec<Components>,
    /// Each root as bytes with a trailing `/`, for the fast path of [`PathMapper::map`].
    prefixes: Vec<Vec<u8>>,
    /// Directory as spelled in a location → the same directory with symlinks resolved.
    /// Filled lazily: tracks share few directories, so 100k tracks cost a few hundred
    /// `canonicalize` calls, and only for locations the plain spellings did not match.
    canonical_dirs: HashMap<Components, Components>,
}

impl PathMapper {
    /// `repo_root`: the work tree; `music_root`: `mixxx_music_root` from the config, if set
    /// (the folder that, in Mixxx's stored paths, corresponds to the repository root).
    pub fn new(repo_root: &Path, music_root: Option<&Path>) -> PathMapper {
        let root = music_root.unwrap_or(repo_root);
        // A relative root means relative to where we run; `absolute` does not touch the
        // file system, so a root that does not exist here still maps by its spelling.
        let spelled = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let mut roots = vec![nfc_components(spelled.as_os_str().as_bytes())];
        if let Ok(canonical) = spelled.canonicalize() {
            let canonical = nfc_components(canonical.as_os_str().as_bytes());
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        let prefixes = roots
            .iter()
            .map(|root| {
                let mut prefix = Vec::new();
                for component in root {
                    prefix.push(b'/');
                    prefix.extend_from_slice(component);
                }
                prefix.push(b'/');
                prefix
            })
            .collect();
        PathMapper {
            roots,
            prefixes,
            canonical_dirs: HashMap::new(),
        }
    }

    /// The repository-relative path of a Mixxx location, spelled as in the location.
    pub fn map(&mut self, location: &[u8]) -> Result<RepoPath, Unmapped> {
        // Almost every location is the root's spelling plus a clean relative path: take it as
        // it is, without splitting it into components (a third of a no-op sync of 100,000
        // tracks went there). Anything else takes the general path below, which gives the
        // same answer for these (a property test checks it).
        for prefix in &self.prefixes {
            if let Some(rest) = location.strip_prefix(prefix.as_slice())
                && is_plain(rest)
            {
                return Ok(RepoPath::from_bytes(rest));
            }
        }
        self.map_components(location)
    }

    fn map_components(&mut self, location: &[u8]) -> Result<RepoPath, Unmapped> {
        if location.first() != Some(&b'/') {
            return Err(Unmapped::OutsideRoot);
        }
        let location = components(location);
        if let Some(relative) = self.strip_root(&location) {
            return Ok(relative);
        }
        // Mixxx may have reached the file through a symlinked folder. Resolve only the
        // folder: the file itself is, for a locked annexed file, a symlink into
        // .git/annex/objects, and resolving it would leave the work tree.
        let Some((file, dir)) = location.split_last() else {
            return Err(Unmapped::OutsideRoot);
        };
        let mut resolved = self.canonical_dir(dir);
        resolved.push(file.clone());
        self.strip_root(&resolved).ok_or(Unmapped::OutsideRoot)
    }

    fn strip_root(&self, location: &[Vec<u8>]) -> Option<RepoPath> {
        self.roots.iter().find_map(|root| {
            // The root itself is a folder, not a track. Roots are kept NFC, so a name spelled
            // exactly like the root's needs no normalising (nor its allocation, per track).
            let under = location.len() > root.len()
                && location
                    .iter()
                    .zip(root)
                    .all(|(name, root)| name == root || nfc(name) == *root);
            under.then(|| RepoPath::from_bytes(location[root.len()..].join(&b'/')))
        })
    }

    /// `dir` with symlinks resolved. A folder that no longer exists (its files were moved
    /// or deleted) resolves through its deepest existing ancestor, found by walking down
    /// from the top so that a location with absurdly many parts stops at the first missing
    /// one instead of costing a system call per part.
    fn canonical_dir(&mut self, dir: &[Vec<u8>]) -> Components {
        if let Some(resolved) = self.canonical_dirs.get(dir) {
            return resolved.clone();
        }
        let resolved = match std::fs::canonicalize(to_path(dir)) {
            Ok(path) => components(path.as_os_str().as_bytes()),
            Err(_) => {
                let mut base = Vec::new();
                let mut existing = 0;
                while existing < dir.len() {
                    match std::fs::canonicalize(to_path(&dir[..=existing])) {
                        Ok(path) => base = components(path.as_os_str().as_bytes()),
                        Err(_) => break,
                    }
                    existing += 1;
                }
                base.extend_from_slice(&dir[existing..]);
                base
            }
        };
        self.canonical_dirs.insert(dir.to_vec(), resolved.clone());
        resolved
    }
}

/// Splits an absolute path into components, dropping empty and `.` components and
/// resolving `..` lexically (at the top, `..` stays at `/`, as the kernel does).
fn components(path: &[u8]) -> Components {
    let mut out: Components = Vec::new();
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            name => out.push(name.to_vec()),
        }
    }
    out
}

fn nfc_components(path: &[u8]) -> Components {
    components(path).iter().map(|name| nfc(name)).collect()
}

/// A relative path that needs no normalizing: non-empty components, none `.` or `..`, no
/// trailing `/`.
fn is_plain(rest: &[u8]) -> bool {
    !rest.is_empty()
        && rest
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

fn nfc(name: &[u8]) -> Vec<u8> {
    crate::model::nfc::nfc(name).unwrap_or_else(|| name.to_vec())
}

fn to_path(components: &[Vec<u8>]) -> PathBuf {
    let mut path = Vec::with_capacity(components.iter().map(|c| c.len() + 1).sum::<usize>() + 1);
    for component in components {
        path.push(b'/');
        path.extend_from_slice(component);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    proptest! {
        /// The fast path never changes an answer.
        #[test]
        fn fast_path_agrees_with_the_general_path(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    &b"a"[..], b"B c", b".", b"..", b"", b"\xc3\xa9", b"e\xcc\x81", b"\xff", b"x.flac",
                ]),
                0..6,
            ),
            rooted in any::<bool>(),
            trailing in any::<bool>(),
        ) {
            let mut location: Vec<u8> = if rooted { b"/home/dj/Music/".to_vec() } else { b"/elsewhere/".to_vec() };
            location.extend(parts.join(&b'/'));
            if trailing {
                location.push(b'/');
            }
            let mut fast = PathMapper::new(Path::new("/nonexistent/repo"), Some(Path::new("/home/dj/Music")));
            let mut general = PathMapper::new(Path::new("/nonexistent/repo"), Some(Path::new("/home/dj/Music")));
            prop_assert_eq!(fast.map(&location), general.map_components(&location));
        }
    }

    fn mapped(mapper: &mut PathMapper, location: &[u8]) -> Result<String, Unmapped> {
        mapper.map(location).map(|p| p.to_string_lossy())
    }

    #[test]
    fn strips_the_root_with_or_without_trailing_slash() {
        for root in ["/home/dj/Music", "/home/dj/Music/", "/home/dj//Music/."] {
            let mut mapper = PathMapper::new(Path::new("/nonexistent/repo"), Some(Path::new(root)));
            assert_eq!(
                mapped(&mut mapper, b"/home/dj/Music/House/a.flac"),
                Ok("House/a.flac".into()),
                "root {root}"
            );
        }
    }

    #[test]
    fn repo_root_is_used_without_music_root() {
        let mut mapper = PathMapper::new(Path::new("/srv/music"), None);
        assert_eq!(mapped(&mut mapper, b"/srv/music/a.mp3"), Ok("a.mp3".into()));
        assert_eq!(
            mapped(&mut mapper, b"/srv/music2/a.mp3"),
            Err(Unmapped::OutsideRoot)
        );
    }

    #[test]
    fn the_root_and_outside_paths_are_not_tracks() {
        let mut mapper = PathMapper::new(Path::new("/srv/music"), None);
        for location in [
            &b"/srv/music"[..],
            b"/srv/music/",
            b"/srv/music/.",
            b"/srv/music/sub/..",
            b"/srv/musi",
            b"/srv",
            b"/",
            b"",
            b"srv/music/a.mp3",
            b"/srv/music/../other/a.mp3",
            b"/other/a.mp3",
        ] {
            assert_eq!(
                mapped(&mut mapper, location),
                Err(Unmapped::OutsideRoot),
                "{}",
                String::from_utf8_lossy(location)
            );
        }
    }

    #[test]
    fn dots_and_double_slashes_are_normalized() {
        let mut mapper = PathMapper::new(Path::new("/srv/music"), None);
        assert_eq!(
            mapped(&mut mapper, b"/srv//music/./a/../b//c.mp3"),
            Ok("b/c.mp3".into())
        );
        assert_eq!(
            mapped(&mut mapper, b"/srv/other/../music/c.mp3"),
            Ok("c.mp3".into())
        );
    }

    #[test]
    fn the_root_is_compared_nfc_and_the_rest_returned_as_spelled() {
        let nfc_root = "/srv/Mus\u{e9}e";
        let nfd_root = "/srv/Muse\u{301}e";
        for (root, location, expected) in [
            (
                nfc_root,
                "/srv/Muse\u{301}e/Bjo\u{308}rk.flac",
                "Bjo\u{308}rk.flac",
            ),
            (
                nfd_root,
                "/srv/Mus\u{e9}e/Bj\u{f6}rk.flac",
                "Bj\u{f6}rk.flac",
            ),
            (
                nfc_root,
                "/srv/Mus\u{e9}e/./Bjo\u{308}rk.flac",
                "Bjo\u{308}rk.flac",
            ),
        ] {
            let mut mapper = PathMapper::new(Path::new(root), None);
            assert_eq!(
                mapped(&mut mapper, location.as_bytes()),
                Ok(expected.into())
            );
        }
    }

    #[test]
    fn non_utf8_bytes_are_kept() {
        let mut mapper = PathMapper::new(Path::new("/srv/Mus\u{e9}e"), None);
        let mut location = "/srv/Muse\u{301}e/Bjo\u{308}rk/".as_bytes().to_vec();
        location.extend_from_slice(b"caf\xe9.mp3");
        let mut expected = "Bjo\u{308}rk/".as_bytes().to_vec();
        expected.extend_from_slice(b"caf\xe9.mp3");
        assert_eq!(mapper.map(&location), Ok(RepoPath::from_bytes(expected)));
    }

    #[test]
    fn symlinked_music_folder_maps_both_ways() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let repo = base.join("repo");
        std::fs::create_dir_all(repo.join("House")).unwrap();
        let link = base.join("Music");
        symlink(&repo, &link).unwrap();
        let bytes = |p: PathBuf| p.into_os_string().into_vec();
        use std::os::unix::ffi::OsStringExt;

        // Mixxx went through the symlink; the repository is configured by its real path.
        let mut mapper = PathMapper::new(&repo, None);
        for _ in 0..2 {
            assert_eq!(
                mapper.map(&bytes(link.join("House/a.flac"))),
                Ok(RepoPath::from_bytes("House/a.flac"))
            );
        }
        // A folder Mixxx remembers but that is gone now resolves via its existing parent.
        assert_eq!(
            mapper.map(&bytes(link.join("Gone/Deeper/b.flac"))),
            Ok(RepoPath::from_bytes("Gone/Deeper/b.flac"))
        );
        // The reverse: Mixxx saw the real path; the root is configured through the link.
        let mut mapper = PathMapper::new(&base.join("repo/../Music/"), None);
        assert_eq!(
            mapper.map(&bytes(repo.join("House/a.flac"))),
            Ok(RepoPath::from_bytes("House/a.flac"))
        );
        // The root given through the link, Mixxx through the link too.
        let mut mapper = PathMapper::new(&link, None);
        assert_eq!(
            mapper.map(&bytes(link.join("a.flac"))),
            Ok(RepoPath::from_bytes("a.flac"))
        );
    }

    #[test]
    fn annexed_file_symlinks_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let objects = base.join("repo/.git/annex/objects/xx");
        std::fs::create_dir_all(&objects).unwrap();
        std::fs::write(objects.join("KEY"), b"audio").unwrap();
        symlink(".git/annex/objects/xx/KEY", base.join("repo/a.flac")).unwrap();
        // Forces the canonicalizing fallback by spelling the folder through a link.
        symlink(base.join("repo"), base.join("link")).unwrap();
        let mut mapper = PathMapper::new(&base.join("repo"), None);
        let location = base.join("link/a.flac");
        assert_eq!(
            mapper.map(location.as_os_str().as_bytes()),
            Ok(RepoPath::from_bytes("a.flac"))
        );
    }

    #[test]
    fn very_deep_locations_do_not_overflow_the_stack() {
        let mut mapper = PathMapper::new(Path::new("/srv/music"), None);
        let location = b"/x".repeat(200_000);
        assert_eq!(mapper.map(&location), Err(Unmapped::OutsideRoot));
    }

    #[test]
    fn root_slash_maps_everything_below_it() {
        let mut mapper = PathMapper::new(Path::new("/"), None);
        assert_eq!(mapped(&mut mapper, b"/a/b.mp3"), Ok("a/b.mp3".into()));
        assert_eq!(mapped(&mut mapper, b"/"), Err(Unmapped::OutsideRoot));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn map_never_panics(location in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                            prefix in proptest::prelude::any::<bool>()) {
            let mut mapper = PathMapper::new(Path::new("/srv/music"), None);
            let mut bytes = if prefix { b"/srv/music/".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&location);
            if let Ok(path) = mapper.map(&bytes) {
                proptest::prop_assert!(!path.as_bytes().is_empty());
                proptest::prop_assert!(!path.as_bytes().starts_with(b"/"));
            }
        }
    }
}
