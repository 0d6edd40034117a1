//! Parsing git-annex `.log.met` files.
//!
//! Mirrors git-annex 10.20230126 (`Logs/Line.hs`, `Logs/SingleValue/Pure.hs`,
//! `Types/MetaData.hs`, `Logs/MetaData.hs`), including its quirks, because the point of
//! reading the branch directly is to get exactly the answer `git annex metadata` would give.
//!
//! Known, deliberate approximations (none can arise from logs git-annex writes itself):
//! - field names are matched by `str::to_lowercase` (as `FieldSet` does) where git-annex uses
//!   full Unicode case folding (`Straße` and `STRASSE` are one field to git-annex, two here);
//! - values that are not UTF-8 become lossy `String`s (one U+FFFD per invalid byte), as in
//!   git-annex's JSON output; distinct byte values can therefore collapse into one string.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use md5::{Digest, Md5};

use crate::model::FieldSet;

/// The current metadata described by a `.log.met` file (lines may come in any order; the
/// newest clock wins per (field, value)). Never panics; unparsable lines are skipped, as
/// git-annex does.
pub fn current(log: &[u8]) -> FieldSet {
    let mut entries: Vec<(Clock, LineMeta)> = log
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|line| !line.is_empty())
        .filter_map(parse_line)
        .collect();
    // git-annex keeps the lines in a Set ordered by (clock, metadata): equal entries collapse
    // to the last one read, and ties on the clock are broken by the metadata's own ordering.
    // A stable sort keeps file order among equal entries, so the last of each run survives.
    entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_meta(&a.1, &b.1)));
    let mut kept: Vec<&(Clock, LineMeta)> = Vec::with_capacity(entries.len());
    for entry in &entries {
        match kept.last_mut() {
            Some(last) if last.0 == entry.0 && cmp_meta(&last.1, &entry.1) == Ordering::Equal => {
                *last = entry;
            }
            _ => kept.push(entry),
        }
    }

    // Newest token per (field, value) decides; the oldest→newest fold makes that the last one.
    let mut state: HashMap<(&str, &[u8]), bool> = HashMap::new();
    for (_, meta) in kept {
        for (field, values) in meta {
            for (value, set) in values {
                state.insert((field.as_str(), value.as_slice()), *set);
            }
        }
    }
    let mut out = FieldSet::new();
    for ((field, value), set) in state {
        if set && !is_derived_field(field) {
            out.insert(field, lossy(value));
        }
    }
    out.shrink_to_fit();
    out
}

/// Like `String::from_utf8_lossy`, but one U+FFFD per invalid byte (Rust uses one per
/// maximal invalid sequence), because that is what `git annex metadata --json` prints.
fn lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(after.len());
                out.extend(std::iter::repeat_n('\u{FFFD}', bad));
                rest = &after[bad..];
            }
        }
    }
}

/// Union-merges several versions of one log (the branch blob + unmerged sibling refs), the
/// way git-annex merges its branch: concatenate lines, de-duplicate, sort bytewise.
pub fn union(logs: &[&[u8]]) -> Vec<u8> {
    // Like git-annex's union merge, lines end at `\n` only; a stray `\r` stays in the line.
    let lines: std::collections::BTreeSet<&[u8]> = logs
        .iter()
        .flat_map(|log| log.split(|&b| b == b'\n'))
        .filter(|line| !line.is_empty())
        .collect();
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The branch path of a key's metadata log: `<hashdirlower(key)><keyFile(key)>.log.met`.
pub fn met_path(key: &str) -> String {
    met_path_levels(key, 2)
}

/// [`met_path`] for a repository whose `difference.log` records `annex.tune.branchhash1`
/// (`levels` = 1) or not (2).
pub fn met_path_levels(key: &str, levels: usize) -> String {
    let digest = Md5::digest(key.as_bytes());
    let hex: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    let mut path = String::with_capacity(key.len() + 20);
    for level in 0..levels.min(2) {
        path.push_str(&hex[level * 3..level * 3 + 3]);
        path.push('/');
    }
    path.push_str(&key_file(key));
    path.push_str(".log.met");
    path
}

/// git-annex's `keyFile`: a key as one path component.
pub fn key_file(key: &str) -> String {
    if !key.contains(['&', '%', ':', '/']) {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '&' => out.push_str("&a"),
            '%' => out.push_str("&s"),
            ':' => out.push_str("&c"),
            '/' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`key_file`], on bytes because a symlink target need not be UTF-8.
pub fn key_from_file(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len());
    let mut i = 0;
    while i < file.len() {
        match (file[i], file.get(i + 1)) {
            (b'%', _) => out.push(b'/'),
            (b'&', Some(b'c')) => {
                out.push(b':');
                i += 1;
            }
            (b'&', Some(b's')) => {
                out.push(b'%');
                i += 1;
            }
            (b'&', Some(b'a')) => {
                out.push(b'&');
                i += 1;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    out
}

/// A log line's metadata: folded field → value → currently set. Within a line the later token
/// for a value wins, as in git-annex's left-biased `Set.union`.
type LineMeta = BTreeMap<String, BTreeMap<Vec<u8>, bool>>;

/// git-annex orders metadata as `Map field (Set value)` whose value ordering ignores the sign.
fn cmp_meta(a: &LineMeta, b: &LineMeta) -> Ordering {
    let (mut a, mut b) = (a.iter(), b.iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((fa, va)), Some((fb, vb))) => {
                let ord = fa.cmp(fb).then_with(|| va.keys().cmp(vb.keys()));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// The suffix of the fields git-annex derives from the log's clocks (`lastchanged`,
/// `<field>-lastchanged`).
const DERIVED_SUFFIX: &str = "lastchanged";

/// Whether git-annex treats `field` as derived: it reports its own value for it and discards
/// writes to it. git-annex's test is a case-sensitive suffix match, so reading a log we match
/// it exactly.
pub(crate) fn is_derived_field(field: &str) -> bool {
    field.ends_with(DERIVED_SUFFIX)
}

/// Whether music-commander refuses `name` as a field it writes or trusts: any case variant of
/// a derived name. Field names are case-insensitive everywhere else in git-annex, so a
/// `fooLastChanged` written by us or a clone would read back like a derived field.
pub(crate) fn is_reserved_name(name: &str) -> bool {
    let (name, suffix) = (name.as_bytes(), DERIVED_SUFFIX.as_bytes());
    name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A git-annex timestamp (POSIX seconds: the vector clock of a `.log.met` line, the
/// `timestamp=` of a `uuid.log` line), kept as digits so comparisons are exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    negative: bool,
    /// Integer digits without leading zeros.
    int: Vec<u8>,
    /// Fraction digits without trailing zeros, cut to picoseconds as Haskell's `Pico` does.
    frac: Vec<u8>,
}

impl Clock {
    /// The parts as parsed: the sign, integer digits without leading zeros, and at most
    /// twelve fraction digits without trailing zeros.
    pub(crate) fn parts(&self) -> (bool, &[u8], &[u8]) {
        (self.negative, &self.int, &self.frac)
    }
}

impl Ord for Clock {
    fn cmp(&self, other: &Self) -> Ordering {
        let magnitude = |c: &Clock| (c.int.len(), c.int.clone(), c.frac.clone());
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => magnitude(self).cmp(&magnitude(other)),
            (true, true) => magnitude(other).cmp(&magnitude(self)),
        }
    }
}

impl PartialOrd for Clock {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `[+-]digits[.digits][s]` at the start of `text`, and what follows it. The one parser of
/// git-annex timestamps: never panics, whatever a clone pushed.
pub(crate) fn parse_timestamp(text: &[u8]) -> Option<(Clock, &[u8])> {
    let mut i = 0;
    let mut minus = false;
    if let Some(&sign @ (b'+' | b'-')) = text.first() {
        minus = sign == b'-';
        i = 1;
    }
    let digits = |from: usize| {
        text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let n = digits(i);
    if n == 0 {
        return None;
    }
    let int = &text[i..i + n];
    i += n;
    let mut frac: &[u8] = &[];
    if text.get(i) == Some(&b'.') && digits(i + 1) > 0 {
        let m = digits(i + 1);
        frac = &text[i + 1..i + 1 + m];
        i += 1 + m;
    }
    if text.get(i) == Some(&b's') {
        i += 1;
    }
    let int: Vec<u8> = int.iter().copied().skip_while(|&d| d == b'0').collect();
    let mut frac = frac[..frac.len().min(12)].to_vec();
    while frac.last() == Some(&b'0') {
        frac.pop();
    }
    // Haskell applies the sign to the integer part only (`-0.5` reads as +0.5).
    let negative = minus && !int.is_empty();
    Some((
        Clock {
            negative,
            int,
            frac,
        },
        &text[i..],
    ))
}

/// A line's clock, then the rest of the line after one space.
fn parse_clock(line: &[u8]) -> Option<(Clock, &[u8])> {
    let (clock, rest) = parse_timestamp(line)?;
    Some((clock, rest.strip_prefix(b" ")?))
}

fn parse_line(line: &[u8]) -> Option<(Clock, LineMeta)> {
    let (clock, rest) = parse_clock(line)?;
    let mut meta = LineMeta::new();
    let mut field: Option<String> = None;
    for token in rest.split(|&b| b == b' ') {
        if let (Some(f), Some((set, value))) = (&field, parse_value(token)) {
            meta.entry(f.clone()).or_default().insert(value, set);
            continue;
        }
        // Anything that is not a value (in field position, or an undecodable value) names the
        // next field; a field name that is not UTF-8 ends the line, as in git-annex.
        match std::str::from_utf8(token) {
            Ok(name) => field = Some(FieldSet::canonical_name(name)),
            Err(_) => break,
        }
    }
    Some((clock, meta))
}

/// Padding is required, but non-zero bits after the last byte are ignored, as git-annex does
/// (`!YR==` reads as `a`).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

fn parse_value(token: &[u8]) -> Option<(bool, Vec<u8>)> {
    let set = match token.first()? {
        b'+' => true,
        b'-' => false,
        _ => return None,
    };
    let raw = &token[1..];
    match raw.split_first() {
        Some((b'!', b64)) => BASE64.decode(b64).ok().map(|v| (set, v)),
        _ => Some((set, raw.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(pairs: &[(&str, &str)]) -> FieldSet {
        pairs.iter().map(|(f, v)| (*f, *v)).collect()
    }

    #[test]
    fn reference_example() {
        let log = b"1700000000s rating +5 tag +!ZGVlcCBob3VzZQ== +house\n\
                    1700000001s tag -!ZGVlcCBob3VzZQ== -house\n";
        assert_eq!(current(log), fs(&[("rating", "5")]));
    }

    #[test]
    fn newest_wins_regardless_of_line_order() {
        let log = b"200s f -a +b\n100s f +a\n";
        assert_eq!(current(log), fs(&[("f", "b")]));
        // Unsets are kept forever: an older set arriving later does not resurrect.
        let log = b"100s f +a\n300s f -a\n200s f +a\n";
        assert_eq!(current(log), FieldSet::new());
    }

    #[test]
    fn clocks_compare_exactly() {
        // As f64 these two clocks are equal; as decimals the second is newer.
        let log = b"1795746952.2762159201s f +new\n1795746952.27621592s f -new\n";
        assert_eq!(current(log), fs(&[("f", "new")]));
        let log = b"1795746952.2762159201s f -new\n1795746952.27621592s f +new\n";
        assert_eq!(current(log), FieldSet::new());
        // Trailing zeros, missing `s`, leading zeros, more digits in the integer.
        let log = b"0100.50s f +a\n100.5 f -a\n99.9s f +a\n";
        assert_eq!(current(log), FieldSet::new());
        let log = b"100s f -a\n1000s f +a\n";
        assert_eq!(current(log), fs(&[("f", "a")]));
        let log = b"-5s f +a\n-6s f -a\n";
        assert_eq!(current(log), fs(&[("f", "a")]));
    }

    #[test]
    fn later_token_in_a_line_wins() {
        assert_eq!(current(b"100s f +a -a\n"), FieldSet::new());
        assert_eq!(current(b"100s f -a +a\n"), fs(&[("f", "a")]));
        assert_eq!(current(b"100s f +a F -a\n"), FieldSet::new());
    }

    #[test]
    fn value_encodings() {
        let log = b"100s a +!IWJhbmc= b ++x +-y c + d +x\ty e +a!b\n";
        assert_eq!(
            current(log),
            fs(&[
                ("a", "!bang"),
                ("b", "+x"),
                ("b", "-y"),
                ("c", ""),
                ("d", "x\ty"),
                ("e", "a!b")
            ])
        );
        assert_eq!(current(b"100s f +!w7xuw68g4piD\n"), fs(&[("f", "ünï ☃")]));
        assert_eq!(
            current(b"100s f +a\xff\xfeb g +\xe2\x82\n"),
            fs(&[("f", "a\u{FFFD}\u{FFFD}b"), ("g", "\u{FFFD}\u{FFFD}")])
        );
        // Non-canonical trailing bits are accepted; missing padding is not (a field name).
        assert_eq!(current(b"100s f +!YR== g +!YQ\n"), fs(&[("f", "a")]));
    }

    #[test]
    fn field_names_fold_case() {
        let log = b"100s rating +4\n200s Rating +3\n300s RATING -4\n";
        assert_eq!(current(log), fs(&[("rating", "3")]));
    }

    #[test]
    fn odd_lines() {
        // Bare field ignored; empty line; unparsable lines; CR line breaks; clock-only line;
        // a line without the space after the clock is invalid.
        let log = b"100 f1 f2 +v2\r\n\r\nnot a line\nx100s f +z\n200s \r\r300s\n150s g +1";
        assert_eq!(current(log), fs(&[("f2", "v2"), ("g", "1")]));
        // An undecodable `!` value becomes a field name, whose values follow it.
        assert_eq!(current(b"100s f +!@@ +v\n"), fs(&[("+!@@", "v")]));
        // A non-UTF-8 field name ends the line.
        assert_eq!(current(b"100s f +v g\xff +w h +x\n"), fs(&[("f", "v")]));
        // Double spaces give an empty field name, as in git-annex.
        assert_eq!(current(b"100s f  +v\n"), fs(&[("", "v")]));
        assert_eq!(current(b"100s \n"), FieldSet::new());
        assert_eq!(current(b""), FieldSet::new());
    }

    /// git-annex's rule is case-sensitive; ours refuses every case variant, and neither slices
    /// a name that is not ASCII.
    #[test]
    fn derived_and_reserved_names() {
        assert!(is_derived_field("rating-lastchanged"));
        assert!(!is_derived_field("fooLastChanged"));
        assert!(is_reserved_name("fooLastChanged"));
        assert!(is_reserved_name("lastchanged"));
        assert!(!is_reserved_name("lastchange"));
        assert!(!is_reserved_name("éééééééééé"));
    }

    #[test]
    fn lastchanged_never_reported() {
        assert_eq!(
            current(b"100s lastchanged +x foo-lastchanged +y f +z\n"),
            fs(&[("f", "z")])
        );
    }

    #[test]
    fn equal_clocks_collapse_or_order_by_content() {
        // Same clock and the same (field, values) ignoring signs: one entry, the later line.
        assert_eq!(current(b"100s f +a\n100s f -a\n"), FieldSet::new());
        assert_eq!(current(b"100s f -a\n100s f +a\n"), fs(&[("f", "a")]));
        // Different content: ordered by content (`f {a}` < `f {a,b}`), not by file order.
        assert_eq!(current(b"100s f -a +b\n100s f +a\n"), fs(&[("f", "b")]));
        assert_eq!(current(b"100s f +a\n100s f -a +b\n"), fs(&[("f", "b")]));
    }

    #[test]
    fn union_sorts_and_dedups() {
        let merged = union(&[b"200s f +b\n100s f +a\n", b"100s f +a\n150s g +c"]);
        assert_eq!(merged, b"100s f +a\n150s g +c\n200s f +b\n");
        assert_eq!(union(&[]), b"");
    }

    #[test]
    fn met_paths() {
        assert_eq!(
            met_path("URL--http://example.com/a%20b/x.mp3"),
            "ddf/ef6/URL--http&c%%example.com%a&s20b%x.mp3.log.met"
        );
        assert_eq!(
            met_path("WORM-s0-m0--music-commander-sync-state"),
            "efc/135/WORM-s0-m0--music-commander-sync-state.log.met"
        );
        assert_eq!(
            met_path_levels("WORM-s0-m0--music-commander-sync-state", 1),
            "efc/WORM-s0-m0--music-commander-sync-state.log.met"
        );
        for key in ["URL--http://e.com/a&b%c:d", "plain", "&s&a%"] {
            assert_eq!(key_from_file(key_file(key).as_bytes()), key.as_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn current_never_panics(log in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = current(&log);
        }

        #[test]
        fn current_never_panics_on_plausible_lines(
            lines in proptest::collection::vec("[-+]?[0-9]{0,3}(\\.[0-9]{0,3})?s? ( ?[a-zA-Z!+-]{0,3}|[+-]![A-Za-z0-9+/=]{0,8}){0,6}", 0..8)
        ) {
            let log = lines.join("\n");
            let _ = current(log.as_bytes());
        }
    }
}
