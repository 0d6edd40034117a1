//! Writing a `.log.met` exactly as git-annex 10.20230126 does (`Logs/MetaData.hs`
//! `addMetaDataClocked'`, `Logs/MetaData/Pure.hs` `simplifyLog`, `Logs/SingleValue/Pure.hs`
//! `buildLog`, `Types/MetaData.hs` `modMeta`/`serialize`, `Annex/VectorClock.hs`
//! `advanceVectorClock`): the old log is parsed into git-annex's `Set (LogEntry MetaData)`, the
//! request becomes one new entry, the set is simplified and every line is serialized again. The
//! bytes produced are the bytes git-annex would put in its journal for the same request.
//!
//! The reader (`metalog`) answers "what is set"; this module must also reproduce spelling,
//! order, encoding and the clocks of every line, so it keeps its own model of an entry.
//! Approximations shared with the reader: field names fold with `to_lowercase` where git-annex
//! uses full Unicode case folding (they differ only for names no tool of ours writes).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

/// Padding required, trailing bits ignored: what git-annex's base64 decoder accepts (the
/// reader measured it, see `metalog`).
const BASE64_READ: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// A vector clock in picoseconds (Haskell's `POSIXTime` is a `Pico`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Clock(pub i128);

const PICO: i128 = 1_000_000_000_000;
/// Integer digits beyond which a clock does not fit an `i128` of picoseconds.
const MAX_INT_DIGITS: usize = 24;

impl Clock {
    /// A clock from seconds and nanoseconds since the epoch.
    pub fn from_unix(secs: u64, nanos: u32) -> Clock {
        Clock(i128::from(secs) * PICO + i128::from(nanos) * 1000)
    }

    /// `parsePOSIXTime` on a whole string (`GIT_ANNEX_VECTOR_CLOCK`).
    pub fn parse_exact(text: &str) -> Option<Clock> {
        match parse_clock(text.as_bytes())? {
            (Ok(clock), b"") => Some(clock),
            _ => None,
        }
    }

    /// How Haskell shows a `POSIXTime`: `100s`, `1.5s`, `-5.25s` (trailing zeros trimmed).
    fn show(self, out: &mut Vec<u8>) {
        let (int, frac) = (self.0 / PICO, self.0 % PICO);
        if self.0 < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(int.unsigned_abs().to_string().as_bytes());
        if frac != 0 {
            let digits = format!("{:012}", frac.unsigned_abs());
            out.push(b'.');
            out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
        }
        out.push(b's');
    }
}

/// Why a log cannot be rewritten exactly.
#[derive(Debug, PartialEq, Eq)]
pub struct Unrepresentable;

/// `parserPOSIXTime` (the one parser, [`metalog::parse_timestamp`]) as picoseconds. `Err` for
/// a clock too large for picoseconds in an `i128` (never written by git-annex).
fn parse_clock(text: &[u8]) -> Option<(Result<Clock, Unrepresentable>, &[u8])> {
    let (parsed, rest) = crate::annex::metalog::parse_timestamp(text)?;
    let (negative, int, frac) = parsed.parts();
    if int.len() > MAX_INT_DIGITS {
        return Some((Err(Unrepresentable), rest));
    }
    let whole: i128 = int.iter().fold(0, |acc, d| acc * 10 + i128::from(d - b'0'));
    // `fromRational` into `Pico` floors: digits beyond the twelfth are dropped (the parser
    // keeps twelve at most).
    let mut pico: i128 = 0;
    for k in 0..12 {
        pico = pico * 10 + frac.get(k).map_or(0, |d| i128::from(d - b'0'));
    }
    // `mkPOSIXTime`: the sign applies when the integer part is negative, so `-0.5` is +0.5
    // (the parser says negative only then).
    let value = if negative {
        -(whole * PICO) - pico
    } else {
        whole * PICO + pico
    };
    Some((Ok(Clock(value)), rest))
}

/// Case-insensitive field identity (git-annex: `CI Text`, compared by its folded form).
fn fold(name: &str) -> String {
    if name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        name.to_lowercase()
    } else {
        name.to_string()
    }
}

/// One field of a log entry: its spelling, and its values with "currently set" flags
/// (`Set MetaValue`, ordered and compared by bytes, ignoring the flag).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    spelling: String,
    values: BTreeMap<Vec<u8>, bool>,
}

/// `MetaData`: folded name → field.
type Meta = BTreeMap<String, Field>;

/// `Ord MetaData`: the map's ascending (folded name, value set) pairs, lexicographically.
fn cmp_meta(a: &Meta, b: &Meta) -> Ordering {
    let (mut a, mut b) = (a.iter(), b.iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, fa)), Some((kb, fb))) => {
                let ord = ka
                    .cmp(kb)
                    .then_with(|| fa.values.keys().cmp(fb.values.keys()));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    clock: Clock,
    meta: Meta,
}

fn cmp_entry(a: &Entry, b: &Entry) -> Ordering {
    a.clock
        .cmp(&b.clock)
        .then_with(|| cmp_meta(&a.meta, &b.meta))
}

/// `Data.Set.fromList`: sorted, and of entries that compare equal the last one listed stays.
fn set_from_list(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(cmp_entry);
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match out.last_mut() {
            Some(last) if cmp_entry(last, &entry) == Ordering::Equal => *last = entry,
            _ => out.push(entry),
        }
    }
    out
}

/// `deserialize` of a value token: `+`/`-`, then raw bytes or `!` + base64.
fn parse_value(token: &[u8]) -> Option<(bool, Vec<u8>)> {
    let set = match token.first()? {
        b'+' => true,
        b'-' => false,
        _ => return None,
    };
    match token[1..].split_first() {
        Some((b'!', b64)) => BASE64_READ.decode(b64).ok().map(|v| (set, v)),
        _ => Some((set, token[1..].to_vec())),
    }
}

/// `deserialize :: ByteString -> Maybe MetaData` (never fails): tokens split on single spaces;
/// a field name, then its values; a token that is not a value names the next field; a name
/// that is not UTF-8 ends the line. A field with no values is not recorded.
fn parse_meta(rest: &[u8]) -> Meta {
    let mut meta = Meta::new();
    let mut field: Option<(&str, String)> = None;
    for token in rest.split(|&b| b == b' ') {
        if let (Some((spelling, folded)), Some((set, value))) = (&field, parse_value(token)) {
            // `insertWith Set.union`: the later token's flag wins, the later spelling too.
            let entry = meta.entry(folded.clone()).or_insert_with(|| Field {
                spelling: spelling.to_string(),
                values: BTreeMap::new(),
            });
            entry.spelling = spelling.to_string();
            entry.values.insert(value, set);
            continue;
        }
        match std::str::from_utf8(token) {
            Ok(name) => field = Some((name, fold(name))),
            Err(_) => break,
        }
    }
    meta
}

/// A parsed `.log.met`: git-annex's `Log MetaData`, ascending.
pub struct Log {
    entries: Vec<Entry>,
}

impl Log {
    /// `parseLog`: lines end at any run of `\r`/`\n`; a line is a clock, one space and
    /// metadata; any other line is dropped (and so vanishes from the rewritten log).
    pub fn parse(content: &[u8]) -> Result<Log, Unrepresentable> {
        let mut entries = Vec::new();
        for line in content.split(|&b| b == b'\n' || b == b'\r') {
            let Some((clock, rest)) = parse_clock(line) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix(b" ") else {
                continue;
            };
            entries.push(Entry {
                clock: clock?,
                meta: parse_meta(rest),
            });
        }
        Ok(Log {
            entries: set_from_list(entries),
        })
    }

    /// The currently set values of `field` (case-insensitive).
    fn current(&self, field: &str) -> BTreeSet<Vec<u8>> {
        let folded = fold(field);
        let mut state: BTreeMap<&[u8], bool> = BTreeMap::new();
        for entry in &self.entries {
            if let Some(f) = entry.meta.get(&folded) {
                for (value, set) in &f.values {
                    state.insert(value, *set);
                }
            }
        }
        state
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(v, _)| v.to_vec())
            .collect()
    }

    /// What every field is set to, as bytes (for tests and checks).
    pub fn current_all(&self) -> BTreeMap<String, BTreeSet<Vec<u8>>> {
        let mut state: BTreeMap<(&str, &[u8]), bool> = BTreeMap::new();
        for entry in &self.entries {
            for (folded, f) in &entry.meta {
                for (value, set) in &f.values {
                    state.insert((folded, value), *set);
                }
            }
        }
        let mut out: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for ((field, value), set) in state {
            if set {
                out.entry(field.to_string())
                    .or_default()
                    .insert(value.to_vec());
            }
        }
        out
    }

    /// Applies one `git annex metadata --batch` request: each named field is set to exactly
    /// `values` (none: removed), at clock `candidate` unless the log already holds that clock
    /// or a later one (then one second after its newest line, as `advanceVectorClock`).
    /// Returns false, changing nothing, for a request naming no field (a read, to git-annex).
    pub fn apply<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a str, &'a [String])>,
        candidate: Clock,
    ) -> bool {
        let mut meta = Meta::new();
        for (name, values) in fields {
            // `modMeta (SetMeta f s)` / `modMeta (DelMeta f Nothing)`: every currently set
            // value is unset, then the requested ones are set (the set wins for equal bytes).
            let mut field = Field {
                spelling: name.to_string(),
                values: self.current(name).into_iter().map(|v| (v, false)).collect(),
            };
            for value in values {
                field.values.insert(value.as_bytes().to_vec(), true);
            }
            meta.insert(fold(name), field);
        }
        if meta.is_empty() {
            return false;
        }
        // The log as git-annex would read it back: a field written without values (removing
        // a field that had none) does not survive parsing, so it does not survive a rewrite.
        for entry in &mut self.entries {
            entry.meta.retain(|_, f| !f.values.is_empty());
        }
        let clock = match self.entries.iter().map(|e| e.clock).max() {
            Some(prev) if prev >= candidate => Clock(prev.0 + PICO),
            _ => candidate,
        };
        self.entries.push(Entry { clock, meta });
        self.entries = set_from_list(std::mem::take(&mut self.entries));
        self.simplify();
        true
    }

    /// `simplifyLog`: each older entry loses the values newer entries mention; the result is
    /// kept only when that removes at least one whole entry.
    fn simplify(&mut self) {
        let mut desc = self.entries.iter().rev();
        let Some(newest) = desc.next() else {
            return;
        };
        let mut newer: BTreeMap<String, BTreeSet<Vec<u8>>> = newest
            .meta
            .iter()
            .map(|(k, f)| (k.clone(), f.values.keys().cloned().collect()))
            .collect();
        let mut kept = vec![newest.clone()];
        for entry in desc {
            let mut unique = Meta::new();
            for (folded, field) in &entry.meta {
                let seen = newer.get(folded);
                let values: BTreeMap<Vec<u8>, bool> = field
                    .values
                    .iter()
                    .filter(|(v, _)| !seen.is_some_and(|s| s.contains(*v)))
                    .map(|(v, s)| (v.clone(), *s))
                    .collect();
                if !values.is_empty() {
                    unique.insert(
                        folded.clone(),
                        Field {
                            spelling: field.spelling.clone(),
                            values,
                        },
                    );
                }
            }
            if unique.is_empty() {
                continue;
            }
            for (folded, u) in &unique {
                newer
                    .entry(folded.clone())
                    .or_default()
                    .extend(u.values.keys().cloned());
            }
            kept.push(Entry {
                clock: entry.clock,
                meta: unique,
            });
        }
        if kept.len() < self.entries.len() {
            kept.reverse();
            self.entries = set_from_list(kept);
        }
    }

    /// `buildLog`: every entry, ascending, as `<clock> <metadata>\n`.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.entries {
            entry.clock.show(&mut out);
            out.push(b' ');
            let mut first = true;
            for field in entry.meta.values() {
                for token in std::iter::once(None).chain(field.values.iter().map(Some)) {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    match token {
                        None => out.extend_from_slice(field.spelling.as_bytes()),
                        Some((value, set)) => serialize_value(value, *set, &mut out),
                    }
                }
            }
            out.push(b'\n');
        }
        out
    }
}

/// `serialize MetaValue`: the sign, then the bytes, base64'd (`!` + padded standard base64)
/// when they hold a space, CR or LF or begin with `!`.
fn serialize_value(value: &[u8], set: bool, out: &mut Vec<u8>) {
    out.push(if set { b'+' } else { b'-' });
    if value.iter().any(|b| matches!(b, b' ' | b'\r' | b'\n')) || value.first() == Some(&b'!') {
        out.push(b'!');
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(value)
                .as_bytes(),
        );
    } else {
        out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(log: &[u8], fields: &[(&str, &[&str])], clock: i128) -> String {
        let mut parsed = Log::parse(log).unwrap();
        let owned: Vec<(String, Vec<String>)> = fields
            .iter()
            .map(|(f, vs)| (f.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect();
        parsed.apply(
            owned.iter().map(|(f, v)| (f.as_str(), v.as_slice())),
            Clock(clock * PICO),
        );
        String::from_utf8(parsed.build()).unwrap()
    }

    #[test]
    fn clocks_show_as_haskell() {
        let show = |c: Clock| {
            let mut out = Vec::new();
            c.show(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(show(Clock(100 * PICO)), "100s");
        assert_eq!(
            show(Clock::from_unix(1795746952, 276215920)),
            "1795746952.27621592s"
        );
        assert_eq!(show(Clock(-5 * PICO - PICO / 4)), "-5.25s");
        assert_eq!(show(Clock(0)), "0s");
        assert_eq!(
            Clock::parse_exact("1700000000"),
            Some(Clock(1_700_000_000 * PICO))
        );
        assert_eq!(
            Clock::parse_exact("0100.50s"),
            Some(Clock(100 * PICO + PICO / 2))
        );
        assert_eq!(Clock::parse_exact("-0.5"), Some(Clock(PICO / 2)));
        assert_eq!(Clock::parse_exact("1.0000000000019"), Some(Clock(PICO + 1)));
        assert_eq!(Clock::parse_exact("x"), None);
        assert_eq!(Clock::parse_exact("5 "), None);
    }

    /// The reference's measured examples (git-annex-metadata.md §2-3).
    #[test]
    fn lines_as_git_annex_writes_them() {
        assert_eq!(
            apply(
                b"",
                &[("rating", &["5"]), ("tag", &["house", "deep house"])],
                1700000000
            ),
            "1700000000s rating +5 tag +!ZGVlcCBob3VzZQ== +house\n"
        );
        let first = apply(
            b"",
            &[("rating", &["5"]), ("tag", &["house", "deep house"])],
            1700000000,
        );
        assert_eq!(
            apply(first.as_bytes(), &[("tag", &[])], 1700000000),
            "1700000000s rating +5 tag +!ZGVlcCBob3VzZQ== +house\n1700000001s tag -!ZGVlcCBob3VzZQ== -house\n"
        );
        // Set to the same value: logged again; the older line loses it and, now empty, goes.
        assert_eq!(
            apply(b"100s rating +5\n", &[("rating", &["5"])], 200),
            "200s rating +5\n"
        );
        // Values sorted bytewise whatever the sign; fields case-insensitively.
        assert_eq!(
            apply(
                b"100s rating +5\n",
                &[("rating", &["4"]), ("Bpm", &["1"])],
                200
            ),
            "200s Bpm +1 rating +4 -5\n"
        );
        // Removing a field that has no value writes the bare field; the next rewrite drops it
        // (measured: `{"x":[]}` then `{"y":["1"]}` on one key).
        assert_eq!(apply(b"", &[("rating", &[])], 100), "100s rating\n");
        let mut log = Log::parse(b"").unwrap();
        let (none, one) = (vec![], vec!["1".to_string()]);
        log.apply(
            [("x", none.as_slice()), ("y", one.as_slice())],
            Clock(100 * PICO),
        );
        assert_eq!(log.build(), b"100s x y +1\n");
        log.apply([("x", none.as_slice())], Clock(100 * PICO));
        assert_eq!(log.build(), b"100s y +1\n101s x\n");
        // Encodings: `!` start, space, CR/LF base64'd; tab, `=`, `+x` raw; empty value bare sign.
        assert_eq!(
            apply(
                b"",
                &[("f", &["!bang", "x\ty", "+x", "", "a!b", "a\rb"])],
                1
            ),
            "1s f + +!IWJhbmc= ++x +!YQ1i +a!b +x\ty\n"
        );
    }

    #[test]
    fn clock_advances_past_the_newest_line() {
        assert_eq!(
            apply(b"4102444800.5s f +a\n", &[("f", &["b"])], 1700000000),
            "4102444801.5s f -a +b\n"
        );
        // Equal to the newest: advanced too.
        assert_eq!(
            apply(b"100s f +a\n", &[("g", &["b"])], 100),
            "100s f +a\n101s g +b\n"
        );
    }

    /// The union-merged example of `simplifyLog`'s comment, and lines rewritten on the way:
    /// unparsable ones dropped, bytewise order back to clock order, bare fields gone.
    #[test]
    fn simplification_and_normalisation() {
        let log = b"100s bar +y foo +x\n150s bar -y baz +w\n200s foo -x\n";
        assert_eq!(
            apply(log, &[("bar", &["z"])], 300),
            "150s bar -y baz +w\n200s foo -x\n300s bar +z\n"
        );
        // Nothing removable: the log is kept as it was (unsorted lines get sorted anyway).
        let log = b"200s g +b\n100s f +a\nnot a line\n150s x y +z\n";
        assert_eq!(
            apply(log, &[("h", &["c"])], 300),
            "100s f +a\n150s y +z\n200s g +b\n300s h +c\n"
        );
    }

    /// The meaning of a log after a request: the named fields are exactly the requested values,
    /// every other field is as before.
    #[test]
    fn apply_sets_exactly_and_keeps_the_rest() {
        let log = b"100s a +1 +2 b +x\n90s a -2\n120s B -x +y\n";
        let mut parsed = Log::parse(log).unwrap();
        let before = parsed.current_all();
        let values = vec!["3".to_string()];
        parsed.apply([("A", values.as_slice())], Clock(50 * PICO));
        let after = Log::parse(&parsed.build()).unwrap().current_all();
        assert_eq!(after["a"], BTreeSet::from([b"3".to_vec()]));
        assert_eq!(after["b"], before["b"]);
    }

    proptest::proptest! {
        #[test]
        fn rewriting_keeps_the_meaning(
            lines in proptest::collection::vec("[0-9]{1,3}(\\.[0-9]{1,2})?s? ( ?[a-cA-C]{1,2}| [+-][a-c!]{0,2}){0,6}", 0..8),
            field in "[a-cA-C]",
            values in proptest::collection::vec("[a-c!]{0,2}", 0..3),
            clock in 0i128..2000,
        ) {
            let log = lines.join("\n");
            let mut parsed = Log::parse(log.as_bytes()).unwrap();
            let mut expected = parsed.current_all();
            parsed.apply([(field.as_str(), values.as_slice())], Clock(clock * PICO));
            let built = parsed.build();
            let got = Log::parse(&built).unwrap().current_all();
            let want: BTreeSet<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
            if want.is_empty() {
                expected.remove(&fold(&field));
            } else {
                expected.insert(fold(&field), want);
            }
            proptest::prop_assert_eq!(&got, &expected);
            // And the reader agrees with this module on the rewritten log (the reader's values
            // are lossy strings, so only where they are UTF-8).
            let utf8 = got.values().flatten().all(|v| std::str::from_utf8(v).is_ok());
            let reader = crate::annex::metalog::current(&built);
            let read: BTreeMap<String, BTreeSet<Vec<u8>>> = reader
                .iter()
                .map(|(f, vs)| (f.to_string(), vs.iter().map(|v| v.as_bytes().to_vec()).collect()))
                .collect();
            if utf8 {
                proptest::prop_assert_eq!(&read, &got);
            }
        }
    }
}
