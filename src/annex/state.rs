//! The sync record, stored as metadata of a made-up key in the git-annex branch: it travels
//! with `git annex sync` and never puts a file in the work tree.

use std::collections::{BTreeMap, HashMap};

use crate::annex::Repo;
use crate::annex::metalog::{self, Clock};
use crate::annex::request::WriteRequest;
use crate::annex::{journal, snapshot};
use crate::error::Result;
use crate::model::AnnexKey;

pub use crate::annex::branch::STATE_KEY;

/// One clone's most recent completed sync. Each clone writes only fields prefixed with its own
/// UUID, so concurrent syncs in different clones never produce multi-valued fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncRecord {
    pub uuid: String,
    /// The clone's git-annex description (from `uuid.log`), when known; not stored by us.
    pub description: Option<String>,
    /// UTC, RFC 3339, seconds precision: `2026-11-27T05:08:02Z`.
    pub time: String,
    pub mixxx_db: String,
    pub tool_version: String,
    pub tracks: u64,
    pub written: u64,
    pub failed: u64,
}

/// The stored attributes, as `<uuid>.<attr>` field names. The UUID prefix keeps clones apart;
/// a UUID (hex and `-`) followed by these suffixes is a legal git-annex field name.
const TIME: &str = "time";
const DB: &str = "db";
const VERSION: &str = "version";
const TRACKS: &str = "tracks";
const WRITTEN: &str = "written";
const FAILED: &str = "failed";

/// The write request that records `record`.
pub fn request(record: &SyncRecord) -> WriteRequest {
    let fields = [
        (TIME, record.time.clone()),
        (DB, record.mixxx_db.clone()),
        (VERSION, record.tool_version.clone()),
        (TRACKS, record.tracks.to_string()),
        (WRITTEN, record.written.to_string()),
        (FAILED, record.failed.to_string()),
    ]
    .into_iter()
    .map(|(attr, value)| (format!("{}.{attr}", record.uuid), vec![value]))
    .collect();
    WriteRequest {
        key: AnnexKey::new(STATE_KEY),
        fields,
    }
}

/// Every clone's record, sorted by time (newest first).
pub fn read_all(repo: &Repo) -> Result<Vec<SyncRecord>> {
    let fields = read_state_fields(repo)?;
    let uuid_log = read_uuid_log(repo)?;
    Ok(assemble(&fields, &descriptions(&uuid_log)))
}

/// The state key's current metadata, read like every other key's (git plumbing on the
/// git-annex branch and journal): no git-annex process, and a read never changes the
/// repository.
fn read_state_fields(repo: &Repo) -> Result<BTreeMap<String, Vec<String>>> {
    let key = AnnexKey::new(STATE_KEY);
    let fields = snapshot::read(repo, std::slice::from_ref(&key))?
        .remove(&key)
        .unwrap_or_default();
    Ok(fields
        .iter()
        .map(|(name, values)| (name.to_string(), values.to_vec()))
        .collect())
}

/// The git-annex description of the clone `uuid` (from `uuid.log`), if it has one.
pub fn description(repo: &Repo, uuid: &str) -> Result<Option<String>> {
    let uuid_log = read_uuid_log(repo)?;
    Ok(descriptions(&uuid_log).remove(uuid))
}

/// `uuid.log` as git-annex sees it: the journal's copy supersedes the branch's.
fn read_uuid_log(repo: &Repo) -> Result<String> {
    // A repository nobody described has no uuid.log; descriptions are optional.
    let log = journal::read_current(repo, "uuid.log")?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&log).into_owned())
}

/// The newest description of each UUID from `uuid.log` lines
/// `<uuid> <description, may contain spaces> timestamp=<secs>[.<frac>]s`.
fn descriptions(uuid_log: &str) -> HashMap<String, String> {
    let mut newest: HashMap<String, (Option<Clock>, String)> = HashMap::new();
    for line in uuid_log.lines() {
        let Some((uuid, rest)) = line.split_once(' ') else {
            continue;
        };
        let (description, stamp) = match rest.rsplit_once(' ') {
            Some((d, t)) => match t.strip_prefix("timestamp=") {
                Some(t) => (d, parse_timestamp(t)),
                None => (rest, None),
            },
            None => (rest, None),
        };
        let entry = newest
            .entry(uuid.to_string())
            .or_insert_with(|| (stamp.clone(), description.to_string()));
        if stamp >= entry.0 {
            *entry = (stamp, description.to_string());
        }
    }
    newest.into_iter().map(|(u, (_, d))| (u, d)).collect()
}

/// A `timestamp=` value, exactly comparable; None (sorting oldest) unless it is a whole
/// git-annex timestamp.
fn parse_timestamp(t: &str) -> Option<Clock> {
    match metalog::parse_timestamp(t.as_bytes())? {
        (clock, b"") => Some(clock),
        _ => None,
    }
}

fn assemble(
    fields: &BTreeMap<String, Vec<String>>,
    descriptions: &HashMap<String, String>,
) -> Vec<SyncRecord> {
    let mut by_uuid: BTreeMap<String, HashMap<String, &[String]>> = BTreeMap::new();
    for (name, values) in fields {
        let Some((uuid, attr)) = name.split_once('.') else {
            continue;
        };
        if metalog::is_reserved_name(attr) {
            continue;
        }
        let attr = attr.to_ascii_lowercase();
        by_uuid
            .entry(uuid.to_ascii_lowercase())
            .or_default()
            .insert(attr, values);
    }
    let mut records: Vec<SyncRecord> = by_uuid
        .into_iter()
        .filter_map(|(uuid, attrs)| {
            // Concurrent writes of one clone's record (two syncs racing) leave several
            // values; the greatest is the newest time / the largest count.
            let text = |attr: &str| {
                attrs
                    .get(attr)
                    .and_then(|v| v.iter().max())
                    .cloned()
                    .unwrap_or_default()
            };
            let number = |attr: &str| {
                attrs
                    .get(attr)
                    .and_then(|v| v.iter().filter_map(|s| s.parse().ok()).max())
                    .unwrap_or(0)
            };
            attrs.contains_key(TIME).then(|| SyncRecord {
                description: descriptions.get(&uuid).cloned(),
                time: text(TIME),
                mixxx_db: text(DB),
                tool_version: text(VERSION),
                tracks: number(TRACKS),
                written: number(WRITTEN),
                failed: number(FAILED),
                uuid,
            })
        })
        .collect();
    // RFC 3339 UTC strings of one fixed shape sort chronologically.
    records.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.uuid.cmp(&b.uuid)));
    records
}

/// Now, as RFC 3339 UTC with seconds precision.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_secs: u64) -> String {
    let (days, rem) = (unix_secs / 86_400, unix_secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`, which works in 400-year eras so leap rules need no special cases.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_795_756_589), "2026-11-27T05:16:29Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
    }

    #[test]
    fn request_fields_are_legal_and_prefixed() {
        let rec = SyncRecord {
            uuid: "c77f2d11-6fff-493a-8cc1-d6208c953467".into(),
            description: Some("ignored".into()),
            time: "2026-11-27T05:08:02Z".into(),
            mixxx_db: "/home/dj/.mixxx/mixxxdb.sqlite".into(),
            tool_version: "0.1.0".into(),
            tracks: 10,
            written: 7,
            failed: 1,
        };
        let req = request(&rec);
        assert_eq!(req.key.as_str(), STATE_KEY);
        assert_eq!(req.fields.len(), 6);
        for name in req.fields.keys() {
            assert!(name.starts_with(&rec.uuid));
            crate::annex::writer::validate_field_name(name).unwrap();
        }
        let fields = req
            .fields
            .into_iter()
            .chain([("lastchanged".into(), vec!["x".into()])])
            .collect();
        let descriptions = HashMap::from([(rec.uuid.clone(), "ignored".to_string())]);
        assert_eq!(assemble(&fields, &descriptions), vec![rec]);
    }

    #[test]
    fn newest_description_wins() {
        let log = "u1 old name timestamp=100.5s\n\
                   u1 new name timestamp=100.25s\n\
                   u1 newest name timestamp=101s\n\
                   u2 legacy line without timestamp\n";
        let d = descriptions(log);
        assert_eq!(d["u1"], "newest name");
        assert_eq!(d["u2"], "legacy line without timestamp");
        assert!(parse_timestamp("100.5s") > parse_timestamp("100.25s"));
    }

    /// Any clone can push a uuid.log line; a malformed one sorts oldest instead of panicking.
    #[test]
    fn malformed_timestamps_sort_oldest() {
        assert_eq!(parse_timestamp("1.ééééés"), None);
        assert_eq!(parse_timestamp("x.5s"), None);
        assert!(parse_timestamp("1.5s") > parse_timestamp("1.ééééés"));
        let d = descriptions("u1 name timestamp=1.ééééés\nu1 later timestamp=1.1s\n");
        assert_eq!(d["u1"], "later");
    }

    proptest::proptest! {
        #[test]
        fn uuid_log_parser_never_panics(log in "(\\PC{0,20}( timestamp=[0-9]{0,3}\\.?\\PC{0,12}s?)?\n){0,8}") {
            let _ = descriptions(&log);
        }

        #[test]
        fn sync_record_parser_never_panics(
            fields in proptest::collection::btree_map(
                "\\PC{0,20}",
                proptest::collection::vec("\\PC{0,12}", 0..3),
                0..8,
            )
        ) {
            for record in assemble(&fields, &HashMap::new()) {
                proptest::prop_assert!(fields.keys().any(|k| k.to_ascii_lowercase().starts_with(&record.uuid)));
            }
        }
    }
}
