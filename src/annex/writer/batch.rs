//! The `git annex metadata --batch --json` protocol: one request line per key (validated so
//! git-annex never dies on it, pure ASCII so no locale breaks it), and its reply lines.

use std::collections::HashSet;

use super::{FailureKind, Outcome, WriteRequest};
use crate::annex::metalog;

/// Checks a field name the way git-annex does (ASCII subset: `[A-Za-z0-9][A-Za-z0-9_.-]*`,
/// and not a derived `lastchanged` name in any case, see [`metalog::is_reserved_name`]).
pub fn validate_field_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("empty field name".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!(
                "illegal field name {name:?}: must start with an ASCII letter or digit"
            ));
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
        return Err(format!(
            "illegal field name {name:?}: {c:?} is not allowed (only letters, digits, _ . -)"
        ));
    }
    if metalog::is_reserved_name(name) {
        return Err(format!(
            "illegal field name {name:?}: git-annex discards fields ending in \"lastchanged\""
        ));
    }
    Ok(())
}

/// Rejects keys git-annex's key parser would refuse: in batch mode that refusal ("Error in $:
/// mempty") kills the whole process. The accepted shape (measured on 10.20230126) is
/// `BACKEND-[sN-][mN-][SN-][CN-]-NAME`: a backend without `-`, then optional decimal size,
/// mtime, chunk size and chunk number in exactly that order, then `-` and any name (may be
/// empty). Control characters are refused too: a newline would split the request, and a NUL
/// makes git-annex fail the request in `git cat-file`.
fn validate_key(key: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("invalid git-annex key {key:?}: {why}"));
    if key.is_empty() {
        return bad("empty");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    let Some((backend, mut rest)) = key.split_once('-') else {
        return bad("no backend");
    };
    if backend.is_empty() {
        return bad("no backend");
    }
    let mut allowed = "smSC";
    loop {
        let Some(c) = rest.chars().next() else {
            return bad("no \"--\" before the name");
        };
        if c == '-' {
            return Ok(());
        }
        let Some(pos) = allowed.find(c) else {
            return bad("unknown or repeated field before \"--\"");
        };
        allowed = &allowed[pos + 1..];
        let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(1 + digits) != Some(&b'-') {
            return bad("a size/mtime/chunk field is not a decimal number");
        }
        rest = &rest[digits + 2..];
    }
}

/// Escapes every non-ASCII character as `\uXXXX`. git-annex decodes its batch input with the
/// locale's encoding: under a C/POSIX locale (cron, `env -i`, many service managers) raw UTF-8
/// makes it die with "Batch input parse failure: Cannot decode input". Escaped input is decoded
/// by the JSON parser itself and stored as proper UTF-8 whatever the locale (measured with
/// git-annex 10.20230126). Non-ASCII can only occur inside JSON strings, where escapes are valid.
fn ascii_json(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The request line for `req`, or why it must not be sent.
pub(super) fn encode(req: &WriteRequest) -> std::result::Result<String, FailureKind> {
    encode_valid(req).map_err(FailureKind::Invalid)
}

fn encode_valid(req: &WriteRequest) -> std::result::Result<String, String> {
    validate_key(req.key.as_str())?;
    let mut folded = HashSet::new();
    for name in req.fields.keys() {
        validate_field_name(name)?;
        if !folded.insert(name.to_lowercase()) {
            return Err(format!(
                "field {name:?} is named twice (field names are case-insensitive)"
            ));
        }
    }
    let line = serde_json::json!({ "key": req.key.as_str(), "fields": &req.fields });
    Ok(ascii_json(&line.to_string()))
}

#[derive(serde::Deserialize)]
struct Reply {
    success: bool,
    #[serde(default, rename = "error-messages")]
    error_messages: Vec<String>,
}

pub(super) fn parse_reply(line: &str) -> Outcome {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        return Outcome::Failed(FailureKind::NotAnnexed);
    }
    match serde_json::from_str::<Reply>(line) {
        Ok(Reply { success: true, .. }) => Outcome::Written,
        Ok(Reply { error_messages, .. }) => Outcome::Failed(FailureKind::Refused(
            error_messages
                .iter()
                .map(|m| m.trim())
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(_) => Outcome::Failed(FailureKind::UnexpectedReply(
            line.chars().take(200).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AnnexKey;

    #[test]
    fn requests_are_pure_ascii_json_with_the_same_meaning() {
        let original = r#"{"fields":{"crate":["Ünï ☃ 🎧","a\"b"]},"key":"K"}"#;
        let escaped = ascii_json(original);
        assert!(escaped.is_ascii(), "{escaped}");
        assert!(
            escaped.contains("\\ud83c\\udfa7"),
            "surrogate pair: {escaped}"
        );
        let a: serde_json::Value = serde_json::from_str(original).unwrap();
        let b: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn field_names() {
        for ok in [
            "rating",
            "1x",
            "x.y",
            "x-y",
            "x_y",
            "mixxx.rating",
            "0b6e-4f.time",
        ] {
            assert_eq!(validate_field_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "foo bar",
            "foo:bar",
            "_x",
            "-x",
            "x/y",
            "x+y",
            "x=y",
            "x@y",
            "x,y",
            "ü",
            "lastchanged",
            "rating-lastchanged",
            "fooLastChanged",
        ] {
            assert!(validate_field_name(bad).is_err(), "{bad}");
        }
    }

    /// Every case here was sent to git-annex 10.20230126: the accepted ones were answered,
    /// the rejected ones killed the batch process ("Error in $: mempty") or, for NUL, failed
    /// inside git-annex.
    #[test]
    fn keys_git_annex_can_parse() {
        for ok in [
            "WORM--x",
            "WORM-s0-m0--music-commander-sync-state",
            "SHA256E-s3--abc.mp3",
            "SHA256E--",
            "WORM-s3---x",
            "WORM-s3-m0-S5-C2--x",
            "WORM-S3--x",
            "WORM-s3-C1--x",
            "URL--http://e.com/a%20b",
            "Ü--x y",
            "WORM--a--b",
        ] {
            assert_eq!(validate_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "notakey",
            "-s3--x",
            "--x",
            "WORM-",
            "WORM-x",
            "WORM-s3",
            "WORM-s3-",
            "WORM-sX--x",
            "WORM-s-1--x",
            "WORM-s+3--x",
            "WORM-m1.5--x",
            "WORM-s3-m--x",
            "WORM-s3-s4--x",
            "WORM-s3-m12-C1-S2--x",
            "WORM-s3-q1--x",
            "A-B--x",
            "WORM--a\nb",
            "WORM--a\0b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies() {
        assert!(matches!(
            parse_reply("\n"),
            Outcome::Failed(FailureKind::NotAnnexed)
        ));
        assert!(matches!(
            parse_reply(r#"{"success":true,"error-messages":[]}"#),
            Outcome::Written
        ));
        assert!(matches!(
            parse_reply(r#"{"success":false,"error-messages":["git-annex: boom "]}"#),
            Outcome::Failed(FailureKind::Refused(m)) if m == "git-annex: boom"
        ));
        assert!(matches!(parse_reply("garbage"), Outcome::Failed(_)));
    }

    #[test]
    fn case_twins_are_refused() {
        let req = WriteRequest {
            key: AnnexKey::new("WORM--x"),
            fields: [("Rating".to_string(), vec![]), ("rating".into(), vec![])].into(),
        };
        assert!(encode(&req).is_err());
    }
}
