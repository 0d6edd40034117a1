//! Cue points as git-annex values: one single-valued field per cue slot, so the three-way
//! merge works slot by slot (hot cue 3 edited here and hot cue 5 there both survive; the same
//! hot cue moved on both sides is a conflict), plus `hotcues`, the numbers of the used hot-cue
//! slots (multi-valued, for `git annex find --metadata hotcues=*`).
//!
//! A value reads `61.250s #FF0000 Drop @5402250` (a loop: `61.250s-63.250s loop #00FF00
//! Build @5402250+176400`): the time in seconds for people (from `library.samplerate`;
//! Mixxx stores positions in samples, stereo frames × 2), the kind for a hot-cue slot
//! holding a saved loop or a jump cue, the color, the label, and — last, after `@` — the
//! exact position and length as Mixxx stored them, in Rust's shortest round-trip float
//! form, so a position travels bit for bit. Only the part after `@`, the kind, the color and
//! the label are read back; the seconds must match what this Mixxx's sample rate gives.

use crate::mixxx::cues::CueRow;
use crate::sync::fields::Unrepresentable;

/// Hot-cue slots Mixxx offers (`NUM_HOT_CUES` in Mixxx 2.3); a row numbered beyond them is
/// not shown by Mixxx and stays local.
pub const HOT_CUES: u8 = 37;

/// Mixxx's cue types (`mixxx::CueType`) that a DJ makes and that travel. `Invalid` (0),
/// `Beat` (3, unused) and `AudibleSound` (8, the analyser's "first sound" range, recomputed
/// by every analysis) stay local.
pub const HOT_CUE: i64 = 1;
pub const MAIN_CUE: i64 = 2;
pub const LOOP: i64 = 4;
pub const JUMP: i64 = 5;
pub const INTRO: i64 = 6;
pub const OUTRO: i64 = 7;
/// Every type the reader keeps.
pub const TRAVELLING: [i64; 6] = [HOT_CUE, MAIN_CUE, LOOP, JUMP, INTRO, OUTRO];

/// The git-annex field `sync` sets beside outgoing cue changes: which Mixxx line (its
/// decoder) the positions were measured with.
pub const ERA_FIELD: &str = "cues-mixxx";

/// Extensions of lossy formats, whose decoders (and so sample positions) Mixxx changed
/// between major versions.
pub const LOSSY: [&str; 7] = ["mp3", "m4a", "aac", "mp4", "ogg", "opus", "wma"];

/// The Mixxx line a schema revision belongs to: 2.3 up to revision 38, 2.4 from 39 on.
pub fn era(revision: Option<u32>) -> &'static str {
    match revision {
        Some(r) if r >= 39 => "2.4",
        Some(_) => "2.3",
        None => "unknown",
    }
}

/// One cue slot of a track, or the index of its used hot-cue slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CueSlot {
    /// The main cue (type 2; Mixxx also keeps it in `library.cuepoint`).
    Main,
    Intro,
    Outro,
    /// Hot cue N (1-based, as Mixxx shows it; the `hotcue` column holds N − 1): a hot cue,
    /// a saved loop or a jump cue.
    Hot(u8),
    /// `hotcues`: the numbers of the used hot-cue slots.
    Index,
}

impl CueSlot {
    /// The `hotcue` column value of this slot's row (−1: none).
    pub fn hotcue(self) -> i64 {
        match self {
            CueSlot::Hot(n) => i64::from(n) - 1,
            _ => -1,
        }
    }

    /// The type of a non-hot-cue slot's row.
    pub fn fixed_type(self) -> Option<i64> {
        match self {
            CueSlot::Main => Some(MAIN_CUE),
            CueSlot::Intro => Some(INTRO),
            CueSlot::Outro => Some(OUTRO),
            _ => None,
        }
    }

    fn holds(self, row: &CueRow) -> bool {
        match self {
            CueSlot::Hot(_) => {
                row.hotcue == self.hotcue() && matches!(row.kind, HOT_CUE | LOOP | JUMP)
            }
            CueSlot::Index => false,
            _ => Some(row.kind) == self.fixed_type(),
        }
    }

    /// The row of a track's rows this slot shows. Of duplicates Mixxx keeps the last one it
    /// reads (rows come in id order), so that is the one.
    pub fn row(self, rows: &[CueRow]) -> Option<&CueRow> {
        rows.iter().filter(|r| self.holds(r)).max_by_key(|r| r.id)
    }
}

/// A cue as a value carries it: everything Mixxx stores but the ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub kind: i64,
    pub position: f64,
    pub length: f64,
    pub label: String,
    /// `None`: a database without the `color` column.
    pub color: Option<i64>,
}

impl Cue {
    pub fn from_row(row: &CueRow) -> Cue {
        Cue {
            kind: row.kind,
            position: row.position,
            length: row.length,
            label: row.label.to_string(),
            color: row.color,
        }
    }
}

/// The slot's git-annex value for a track with these rows (`None`: the slot is empty).
pub fn forward(slot: CueSlot, rows: &[CueRow], samplerate: Option<i64>) -> Option<String> {
    slot.row(rows)
        .and_then(|row| encode(slot, &Cue::from_row(row), samplerate))
}

/// The used hot-cue slot numbers.
pub fn index(rows: &[CueRow]) -> impl Iterator<Item = String> + '_ {
    (1..=HOT_CUES)
        .filter(|&n| CueSlot::Hot(n).row(rows).is_some())
        .map(|n| n.to_string())
}

/// The time of `samples` in whole milliseconds (rounded half up), for the seconds shown.
fn millis(samples: f64, samplerate: Option<i64>) -> Option<u64> {
    samplerate
        .filter(|&sr| sr > 0)
        .filter(|_| samples >= 0.0)
        .map(|sr| (samples * 1000.0 / (sr as f64 * 2.0) + 0.5).floor() as u64)
}

/// `61.250s`: milliseconds written as seconds with three decimals, without float formatting
/// (this runs for every cue of every no-op sync).
fn push_seconds(out: &mut String, ms: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{}.{:03}s", ms / 1000, ms % 1000);
}

/// The value for `cue` in `slot`; `None` for what no value can carry (non-finite numbers,
/// a type the slot does not hold).
pub fn encode(slot: CueSlot, cue: &Cue, samplerate: Option<i64>) -> Option<String> {
    if !cue.position.is_finite() || !cue.length.is_finite() {
        return None;
    }
    let kind = match slot {
        CueSlot::Index => return None,
        CueSlot::Hot(_) => match cue.kind {
            HOT_CUE => "",
            LOOP => "loop ",
            JUMP => "jump ",
            _ => return None,
        },
        _ if Some(cue.kind) == slot.fixed_type() => "",
        _ => return None,
    };
    use std::fmt::Write;
    let mut out = String::with_capacity(40 + cue.label.len());
    match millis(cue.position, samplerate) {
        Some(ms) => push_seconds(&mut out, ms),
        None => out.push_str("?s"),
    }
    if let Some(e) = millis(cue.position + cue.length, samplerate).filter(|_| cue.length != 0.0) {
        out.push('-');
        push_seconds(&mut out, e);
    }
    out.push(' ');
    out.push_str(kind);
    if let Some(c) = cue.color {
        if !(0..=u32::MAX as i64).contains(&c) {
            return None;
        }
        let _ = write!(out, "#{c:06X} ");
    }
    if !cue.label.is_empty() {
        escape_label(&cue.label, &mut out);
        out.push(' ');
    }
    let _ = write!(out, "@{}", cue.position);
    if cue.length != 0.0 {
        let _ = write!(out, "+{}", cue.length);
    }
    Some(out)
}

/// Reads a value back; the seconds are not read (they follow from the position). Strict: a
/// value that [`encode`] would spell differently is refused by the caller's round trip.
pub fn decode(slot: CueSlot, value: &str) -> Result<Cue, Unrepresentable> {
    let bad = || Unrepresentable::Invalid(value.to_string());
    let (head, exact) = value.rsplit_once(' ').ok_or_else(bad)?;
    let exact = exact.strip_prefix('@').ok_or_else(bad)?;
    let (position, length) = match exact.split_once('+') {
        Some((p, l)) => (p, Some(l)),
        None => (exact, None),
    };
    let number = |s: &str| s.parse::<f64>().ok().filter(|f| f.is_finite());
    let position = number(position).ok_or_else(bad)?;
    let length = match length {
        Some(l) => number(l).filter(|&l| l != 0.0).ok_or_else(bad)?,
        None => 0.0,
    };
    // Seconds first, then what follows them.
    let mut rest = head.split_once(' ').map(|(_, rest)| rest);
    let mut kind = slot.fixed_type().unwrap_or(HOT_CUE);
    if let (CueSlot::Hot(_), Some(r)) = (slot, rest) {
        for (word, k) in [("loop", LOOP), ("jump", JUMP)] {
            if r == word || r.starts_with(&format!("{word} ")) {
                kind = k;
                rest = r.get(word.len() + 1..);
                break;
            }
        }
    }
    let mut color = None;
    if let Some(r) = rest.filter(|r| r.starts_with('#')) {
        let (token, after) = match r.split_once(' ') {
            Some((t, a)) => (t, Some(a)),
            None => (r, None),
        };
        let hex = &token[1..];
        if !(6..=8).contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        color = Some(i64::from_str_radix(hex, 16).map_err(|_| bad())?);
        rest = after;
    }
    let label = match rest {
        None => String::new(),
        Some(l) => unescape_label(l).ok_or_else(bad)?,
    };
    if matches!(slot, CueSlot::Index) {
        return Err(bad());
    }
    Ok(Cue {
        kind,
        position,
        length,
        label,
        color,
    })
}

/// Labels are kept exact: `\` is written `\\`, newline, carriage return and tab `\n`, `\r`,
/// `\t`, any other control character `\u{…}` (git-annex values cannot hold a newline), and a
/// first character that would read as a kind or a color (`#`, `loop`, `jump`) as `\u{…}`.
fn escape_label(label: &str, out: &mut String) {
    use std::fmt::Write;
    let ambiguous_start =
        label.starts_with('#') || label.starts_with("loop") || label.starts_with("jump");
    for (i, c) in label.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || (i == 0 && ambiguous_start) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn unescape_label(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c.is_control() {
                return None;
            }
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cue(kind: i64, position: f64, length: f64, label: &str, color: Option<i64>) -> Cue {
        Cue {
            kind,
            position,
            length,
            label: label.into(),
            color,
        }
    }

    #[test]
    fn values_read_like_the_readme_says() {
        let drop = cue(HOT_CUE, 5_402_250.0, 0.0, "Drop", Some(0xFF0000));
        assert_eq!(
            encode(CueSlot::Hot(3), &drop, Some(44100)).unwrap(),
            "61.250s #FF0000 Drop @5402250"
        );
        let build = cue(LOOP, 5_402_250.5, 176_400.0, "", Some(0x00FF00));
        assert_eq!(
            encode(CueSlot::Hot(1), &build, Some(44100)).unwrap(),
            "61.250s-63.250s loop #00FF00 @5402250.5+176400"
        );
        let intro = cue(INTRO, -1.0, 88200.0, "", Some(0xFF0000));
        assert_eq!(
            encode(CueSlot::Intro, &intro, None).unwrap(),
            "?s #FF0000 @-1+88200"
        );
        // A type the slot does not hold is no value.
        assert_eq!(encode(CueSlot::Main, &drop, Some(44100)), None);
        assert_eq!(encode(CueSlot::Hot(1), &intro, Some(44100)), None);
        assert_eq!(era(Some(32)), "2.3");
        assert_eq!(era(Some(39)), "2.4");
    }

    #[test]
    fn ambiguous_labels_are_escaped() {
        for label in [
            "loop", "jump x", "#FF0000", "a\nb", "\\u{41}", " ", "x @5", "@5",
        ] {
            let c = cue(HOT_CUE, 10.0, 0.0, label, None);
            let v = encode(CueSlot::Hot(2), &c, Some(48000)).unwrap();
            assert!(!v.contains('\n'), "{v:?}");
            assert_eq!(decode(CueSlot::Hot(2), &v).unwrap(), c, "{v:?}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        for v in [
            "",
            "61.250s",
            "61.250s #FF0000 5402250",
            "61.250s @x",
            "61.250s @1+0",
            "61.250s #GG0000 @1",
            "61.250s \\q @1",
        ] {
            assert!(decode(CueSlot::Hot(1), v).is_err(), "{v:?}");
        }
    }

    fn slot() -> impl Strategy<Value = CueSlot> {
        prop_oneof![
            Just(CueSlot::Main),
            Just(CueSlot::Intro),
            Just(CueSlot::Outro),
            (1..=HOT_CUES).prop_map(CueSlot::Hot),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_the_identity(
            slot in slot(),
            hot_kind in prop::sample::select(vec![HOT_CUE, LOOP, JUMP]),
            position in prop_oneof![any::<f64>(), (-1i64..100_000_000).prop_map(|p| p as f64)],
            length in prop_oneof![Just(0.0), any::<f64>()],
            label in prop_oneof![any::<String>(), "[ #@loopjum\\\\\n\t+]{0,8}"],
            color in prop::option::of(0i64..=u32::MAX as i64),
            samplerate in prop::option::of(prop_oneof![Just(44100i64), Just(48000), any::<i64>()]),
        ) {
            let kind = slot.fixed_type().unwrap_or(hot_kind);
            let c = cue(kind, position, length, &label, color);
            match encode(slot, &c, samplerate) {
                None => prop_assert!(!position.is_finite() || !length.is_finite()),
                Some(v) => {
                    prop_assert!(!v.contains('\n') && !v.contains('\r'));
                    let back = decode(slot, &v).unwrap();
                    prop_assert_eq!(back.position.to_bits(), position.to_bits());
                    prop_assert_eq!(back.length.to_bits(), if length == 0.0 { 0.0f64.to_bits() } else { length.to_bits() });
                    prop_assert_eq!(&back.label, &label);
                    prop_assert_eq!(back.color, color);
                    prop_assert_eq!(back.kind, kind);
                    prop_assert_eq!(encode(slot, &back, samplerate), Some(v));
                }
            }
        }

        #[test]
        fn decode_never_panics(slot in slot(), v in any::<String>()) {
            let _ = decode(slot, &v);
        }
    }
}
