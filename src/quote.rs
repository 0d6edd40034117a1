//! Text for a person's terminal, quoted the way git's `core.quotePath` quotes control characters.
//!
//! Clone descriptions, file names and metadata values come from other clones and from the Mixxx
//! library; printed raw, an ESC in them rewrites the window title or clears the screen, and a
//! bidi override reorders the rest of the line. Text that needs none of that is printed as is
//! (so "坂本龍一" reads normally); otherwise it is wrapped in double quotes with C escapes:
//! `\a \b \t \n \v \f \r \" \\`, other ASCII controls and DEL as octal (`\033`, as git writes
//! ESC), bytes that are not UTF-8 as octal (`\377`), and the invisible Unicode controls (C1,
//! bidi embeddings, overrides, isolates and marks, line and paragraph separators) as `\u{202e}`.
//! Text that starts with `"` is quoted too, so a quoted display never reads as another text's
//! plain one. JSON output is never quoted.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` as it is safe to print: unchanged when nothing in it needs escaping.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if needs_quotes(text) {
        let mut out = String::with_capacity(text.len() + 8);
        out.push('"');
        escape_str(text, &mut out);
        out.push('"');
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Like [`for_terminal`] for bytes that may not be UTF-8 (a repository path).
pub fn bytes_for_terminal(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return for_terminal(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        escape_str(chunk.valid(), &mut out);
        for b in chunk.invalid() {
            let _ = write!(out, "\\{b:03o}");
        }
    }
    out.push('"');
    Cow::Owned(out)
}

fn needs_quotes(text: &str) -> bool {
    text.starts_with('"') || text.chars().any(is_hidden)
}

/// Characters a terminal acts on or that change how the rest of a line is laid out.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn escape_str(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bytes a display stands for: the inverse of [`bytes_for_terminal`], which proves that
    /// distinct texts never display alike.
    fn unquote(shown: &str) -> Vec<u8> {
        let Some(inner) = shown.strip_prefix('"') else {
            return shown.as_bytes().to_vec();
        };
        let inner = inner.strip_suffix('"').expect("closing quote");
        let mut out = Vec::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            match chars.next().expect("escape") {
                '"' => out.push(b'"'),
                '\\' => out.push(b'\\'),
                'a' => out.push(7),
                'b' => out.push(8),
                't' => out.push(b'\t'),
                'n' => out.push(b'\n'),
                'v' => out.push(11),
                'f' => out.push(12),
                'r' => out.push(b'\r'),
                'u' => {
                    assert_eq!(chars.next(), Some('{'));
                    let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let c = char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap();
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                d => {
                    let oct: String = [d, chars.next().unwrap(), chars.next().unwrap()]
                        .into_iter()
                        .collect();
                    out.push(u8::from_str_radix(&oct, 8).unwrap());
                }
            }
        }
        out
    }

    fn assert_safe(shown: &str) {
        assert!(
            !shown.chars().any(is_hidden),
            "{shown:?} still carries a control"
        );
    }

    #[test]
    fn plain_text_is_unchanged_and_borrowed() {
        for text in [
            "",
            "Daft Punk/0001 Track.flac",
            "坂本龍一",
            "Sigur Rós",
            "12\" Vinyl",
            "a\\b",
        ] {
            assert!(matches!(for_terminal(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(bytes_for_terminal(text.as_bytes()), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_are_c_escapes_like_git() {
        assert_eq!(
            for_terminal("\x1b]0;pwned\x07\x1b[2J"),
            r#""\033]0;pwned\a\033[2J""#
        );
        assert_eq!(for_terminal("a\tb\nc\"d\\e\x7f"), r#""a\tb\nc\"d\\e\177""#);
        assert_eq!(for_terminal("\u{9b}2J"), r#""\u{9b}2J""#);
        assert_eq!(for_terminal("\"quoted\""), r#""\"quoted\"""#);
    }

    #[test]
    fn bidi_controls_are_unicode_escapes() {
        assert_eq!(for_terminal("Crate\u{202e}kcab"), r#""Crate\u{202e}kcab""#);
        assert_eq!(for_terminal("\u{2066}x\u{2069}"), r#""\u{2066}x\u{2069}""#);
    }

    #[test]
    fn invalid_utf8_is_octal() {
        assert_eq!(
            bytes_for_terminal(b"caf\xe9 \x1b.flac"),
            r#""caf\351 \033.flac""#
        );
    }

    proptest! {
        #[test]
        fn never_prints_a_control_and_is_reversible(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let shown = bytes_for_terminal(&bytes);
            assert_safe(&shown);
            prop_assert!(!shown.bytes().any(|b| b < 0x20 || b == 0x7f));
            prop_assert_eq!(unquote(&shown), bytes);
        }

        #[test]
        fn text_never_prints_a_control_and_is_reversible(text in any::<String>()) {
            let shown = for_terminal(&text);
            assert_safe(&shown);
            prop_assert!(!shown.bytes().any(|b| b < 0x20 || b == 0x7f));
            prop_assert_eq!(unquote(&shown), text.as_bytes());
            if !text.starts_with('"') && !text.chars().any(is_hidden) {
                prop_assert_eq!(&*shown, text.as_str());
            }
        }

        #[test]
        fn printable_text_is_unchanged(text in "[^\"\\p{Cc}\\p{Cf}\u{2028}\u{2029}][^\\p{Cc}\\p{Cf}\u{2028}\u{2029}]*") {
            prop_assert_eq!(&*for_terminal(&text), text.as_str());
        }
    }
}
