//! A planned change's values, packed into one buffer, short ones inline.
//!
//! A first sync of 100,000 files plans a million changes, most with one short value (a
//! rating, a BPM, a key). Held as a list of `String`s, each value cost an allocation and the
//! list another: 100 bytes and more per change, the largest part of the run's memory.

use std::fmt;

/// Value lists one after another: each value its byte length (LEB128), then its bytes.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Packed(Repr);

/// Up to this many bytes sit in the change itself, no allocation: with the length byte,
/// every rating, BPM, key, color, year and most names.
const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Packed {
    /// Packs `lists` in order; returns the buffer and the byte offset where each list ends.
    pub(super) fn new<const N: usize>(lists: [&[String]; N]) -> (Packed, [u32; N]) {
        let mut bytes = Vec::new();
        let mut ends = [0; N];
        for (list, end) in lists.iter().zip(&mut ends) {
            for value in list.iter() {
                push_len(&mut bytes, value.len());
                bytes.extend_from_slice(value.as_bytes());
            }
            *end = u32::try_from(bytes.len()).expect("a field's values fit in 4 GiB");
        }
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
        (Packed(packed), ends)
    }

    /// The values between byte offsets `start` and `end` (two of the ends `new` returned; an
    /// `end` past the buffer means its end).
    pub(super) fn values(&self, start: u32, end: u32) -> Values<'_> {
        let all = match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Heap(bytes) => bytes,
        };
        let end = (end as usize).min(all.len());
        Values {
            bytes: &all[start as usize..end],
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
        let (mut len, mut shift, mut at) = (0usize, 0, 0);
        loop {
            let byte = self.rest[at];
            at += 1;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
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
        self.values(0, u32::MAX).fmt(f)
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

    proptest! {
        #[test]
        fn every_list_comes_back_as_packed(a in strings(), b in strings(), c in strings()) {
            let (packed, ends) = Packed::new([&a[..], &b[..], &c[..]]);
            prop_assert_eq!(packed.values(0, ends[0]).to_vec(), a.clone());
            prop_assert_eq!(packed.values(ends[0], ends[1]).to_vec(), b.clone());
            prop_assert_eq!(packed.values(ends[1], ends[2]).to_vec(), c.clone());
            prop_assert!(packed.values(0, ends[0]) == a[..]);
            prop_assert_eq!(packed.values(ends[0], ends[1]).is_empty(), b.is_empty());
            prop_assert_eq!(packed.values(ends[1], ends[2]).len(), c.len());
            let shorter = &c[..c.len().saturating_sub(1)];
            prop_assert_eq!(packed.values(ends[1], ends[2]) == shorter, c.is_empty());
        }
    }

    #[test]
    fn short_values_stay_inline() {
        let one = ["128.000000".to_string()];
        let (packed, _) = Packed::new([&one[..], &[], &[]]);
        assert!(matches!(packed.0, Repr::Inline { .. }));
        let long = ["a title longer than twenty-two bytes".to_string()];
        let (packed, ends) = Packed::new([&long[..]]);
        assert!(matches!(packed.0, Repr::Heap(_)));
        assert_eq!(packed.values(0, ends[0]).only(), Some(long[0].as_str()));
    }
}
