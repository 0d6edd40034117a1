//! A planned change's values, packed into one buffer, short ones inline.
//!
//! A first sync of 100,000 files plans a million changes, most with one short value (a
//! rating, a BPM, a key). Held as a list of `String`s, each value cost an allocation and the
//! list another: 100 bytes and more per change, the largest part of the run's memory.

use std::fmt;

/// Three value lists, then the rest: each list its count (LEB128; 0 for none at all, else
/// one more than it holds), each value its byte length (LEB128) then its bytes; the rest
/// values to the end. The counts sit in the buffer so that a change is 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Packed(Repr);

/// Up to this many bytes sit in the change itself, no allocation: with the counts and
/// length bytes, every rating, BPM, key, color, year and most names.
const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Packed {
    /// Packs `lists` (`None`: no list at all, which is not an empty one), then `rest`.
    pub(super) fn new(lists: [Option<&[String]>; 3], rest: &[String]) -> Packed {
        let mut bytes = Vec::new();
        let push_values = |bytes: &mut Vec<u8>, values: &[String]| {
            for value in values {
                push_len(bytes, value.len());
                bytes.extend_from_slice(value.as_bytes());
            }
        };
        for list in lists {
            push_len(&mut bytes, list.map_or(0, |l| l.len() + 1));
            push_values(&mut bytes, list.unwrap_or_default());
        }
        push_values(&mut bytes, rest);
        let packed = if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(&bytes);
            Repr::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Repr::Heap(bytes.into_boxed_slice())
        };
        Packed(packed)
    }

    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Heap(bytes) => bytes,
        }
    }

    /// List `n` of the three (`None` when packed as none at all); `n == 3` is the rest.
    pub(super) fn list(&self, n: usize) -> Option<Values<'_>> {
        let all = self.bytes();
        let mut at = 0;
        for i in 0..3 {
            let count = read_len(all, &mut at);
            let start = at;
            for _ in 1..count {
                at += read_len(all, &mut at);
            }
            if i == n {
                return (count > 0).then(|| Values {
                    bytes: &all[start..at],
                });
            }
        }
        Some(Values { bytes: &all[at..] })
    }
}

/// The LEB128 number at `*at`, moving `at` past it.
fn read_len(bytes: &[u8], at: &mut usize) -> usize {
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        len |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return len;
        }
    }
}

fn push_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// One side's values of a change (absent when empty), in order; compares equal to a slice of
/// the same strings.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Values<'a> {
    bytes: &'a [u8],
}

impl<'a> Values<'a> {
    pub fn iter(self) -> Iter<'a> {
        Iter { rest: self.bytes }
    }

    pub fn is_empty(self) -> bool {
        self.bytes.is_empty()
    }

    pub fn len(self) -> usize {
        self.iter().count()
    }

    /// The value when there is exactly one.
    pub fn only(self) -> Option<&'a str> {
        let mut values = self.iter();
        match (values.next(), values.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// The value, or none; how many there are when there are several.
    pub fn at_most_one(self) -> Result<Option<&'a str>, usize> {
        match self.len() {
            0 => Ok(None),
            1 => Ok(self.only()),
            n => Err(n),
        }
    }

    pub fn contains(self, value: &str) -> bool {
        self.iter().any(|v| v == value)
    }

    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl<'a> IntoIterator for Values<'a> {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[derive(Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let mut at = 0;
        let len = read_len(self.rest, &mut at);
        let (value, rest) = self.rest[at..].split_at(len);
        self.rest = rest;
        // Every value was packed from a `String`, and lengths fall on its boundaries.
        Some(std::str::from_utf8(value).expect("packed from a String"))
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for Values<'_> {
    fn eq(&self, other: &[S]) -> bool {
        let mut mine = self.iter();
        other.iter().all(|o| mine.next() == Some(o.as_ref())) && mine.next().is_none()
    }
}

impl<S: AsRef<str>> PartialEq<&[S]> for Values<'_> {
    fn eq(&self, other: &&[S]) -> bool {
        *self == **other
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Values<'_> {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Values<'_> {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..4).map(|n| self.list(n)))
            .finish()
    }
}

impl serde::Serialize for Values<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings() -> impl Strategy<Value = Vec<String>> {
        // Empty values, multi-byte characters and lengths across the one-byte LEB128 limit.
        prop::collection::vec(
            prop_oneof![".{0,30}", "[a-zé🎵]{100,200}"].prop_map(String::from),
            0..4,
        )
    }

    fn lists() -> impl Strategy<Value = Option<Vec<String>>> {
        prop::option::of(strings())
    }

    proptest! {
        #[test]
        fn every_list_comes_back_as_packed(
            a in lists(), b in lists(), c in lists(), rest in strings()
        ) {
            let packed = Packed::new([a.as_deref(), b.as_deref(), c.as_deref()], &rest);
            for (n, list) in [&a, &b, &c].into_iter().enumerate() {
                let got = packed.list(n);
                prop_assert_eq!(got.map(Values::to_vec), list.clone());
                if let (Some(got), Some(list)) = (got, list) {
                    prop_assert!(got == list[..]);
                    prop_assert_eq!(got.is_empty(), list.is_empty());
                    prop_assert_eq!(got.len(), list.len());
                    let shorter = &list[..list.len().saturating_sub(1)];
                    prop_assert_eq!(got == shorter, list.is_empty());
                }
            }
            prop_assert_eq!(packed.list(3).map(Values::to_vec), Some(rest));
        }
    }

    #[test]
    fn a_change_is_32_bytes_and_short_values_stay_inline() {
        assert_eq!(std::mem::size_of::<crate::sync::plan::FieldChange>(), 32);
        let one = ["128.000000".to_string()];
        let packed = Packed::new([Some(&one[..]), Some(&[]), None], &[]);
        assert!(matches!(packed.0, Repr::Inline { .. }));
        let long = ["a title longer than twenty-two bytes".to_string()];
        let packed = Packed::new([Some(&[]), Some(&long[..]), None], &[]);
        assert!(matches!(packed.0, Repr::Heap(_)));
        assert_eq!(
            packed.list(1).and_then(Values::only),
            Some(long[0].as_str())
        );
        assert_eq!(packed.list(2), None);
    }
}
