//! Unicode NFC normalisation of byte paths, one `/`-separated name at a time: a name that is
//! not UTF-8 is kept as it is while the other names of the path are still normalised.
//!
//! Paths are matched by their exact bytes first; NFC is only the fallback for a name spelled
//! decomposed on one side (macOS hands Mixxx NFD names) and composed on the other, because
//! two files whose names differ only in normalisation are two files.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The NFC spelling of `path`, or None when it is NFC already.
pub fn nfc(path: &[u8]) -> Option<Vec<u8>> {
    if path.is_ascii() {
        return None;
    }
    // Most names are composed already: one quick check over the whole path settles that
    // without splitting or allocating (this runs over every index path on a lookup miss).
    if std::str::from_utf8(path).is_ok_and(|s| is_nfc_quick(s.chars()) == IsNormalized::Yes) {
        return None;
    }
    let mut changed = false;
    let mut out = Vec::with_capacity(path.len());
    for (i, name) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match std::str::from_utf8(name) {
            Ok(s) if is_nfc_quick(s.chars()) != IsNormalized::Yes => {
                let composed: String = s.nfc().collect();
                changed |= composed.as_bytes() != name;
                out.extend_from_slice(composed.as_bytes());
            }
            _ => out.extend_from_slice(name),
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_utf8_name() {
        assert_eq!(nfc(b"plain/ascii.mp3"), None);
        assert_eq!(nfc("Caf\u{e9}.mp3".as_bytes()), None);
        assert_eq!(
            nfc("Bjo\u{308}rk/Cafe\u{301}.mp3".as_bytes()),
            Some("Bj\u{f6}rk/Caf\u{e9}.mp3".as_bytes().to_vec())
        );
        let mut mixed = "Bjo\u{308}rk/".as_bytes().to_vec();
        mixed.extend_from_slice(b"caf\xe9.mp3");
        let mut expected = "Bj\u{f6}rk/".as_bytes().to_vec();
        expected.extend_from_slice(b"caf\xe9.mp3");
        assert_eq!(nfc(&mixed), Some(expected));
        assert_eq!(nfc(b"caf\xe9.mp3"), None);
    }
}
