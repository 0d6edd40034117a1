//! The plan: which files get which field changes. Pure: Mixxx tracks, the key map and the
//! current metadata go in, a [`Plan`] comes out. Nothing here touches a process or a file.

use std::collections::HashMap;

use crate::annex::{Entry, KeyMap};
use crate::mixxx::Library;
use crate::mixxx::paths::{PathMapper, Unmapped};
use crate::model::{AnnexKey, FieldSet, RepoPath};
use crate::sync::fields::{FieldId, ManagedFields};

/// Why a Mixxx track is not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The user removed it from the Mixxx library (`mixxx_deleted`); its metadata is kept.
    RemovedFromMixxx,
    /// Its location is not under the music root.
    OutsideRoot,
    /// Under the root, but git does not track such a file.
    NotInRepository,
    /// Tracked by git but not annexed: git-annex keeps no metadata for it.
    NotAnnexed,
    /// Annexed under a key that is not UTF-8 (a WORM key made from a Latin-1 name), which
    /// git-annex's JSON batch protocol cannot address.
    KeyNotUtf8,
}

impl SkipReason {
    pub const ALL: [SkipReason; 5] = [
        SkipReason::RemovedFromMixxx,
        SkipReason::OutsideRoot,
        SkipReason::NotInRepository,
        SkipReason::NotAnnexed,
        SkipReason::KeyNotUtf8,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::RemovedFromMixxx => "removed from the Mixxx library",
            SkipReason::OutsideRoot => "outside the music root",
            SkipReason::NotInRepository => "not in the repository",
            SkipReason::NotAnnexed => "not annexed (plain git file)",
            SkipReason::KeyNotUtf8 => "git-annex key is not UTF-8",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Mixxx's location, or the repository path when it mapped to one.
    pub location: String,
    pub reason: SkipReason,
}

/// One field of one file: its values now and after the sync (empty = absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: FieldId,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl FieldChange {
    /// Values the sync adds (element-wise, for a multi-valued field).
    pub fn added(&self) -> impl Iterator<Item = &String> {
        self.after.iter().filter(|v| !self.before.contains(v))
    }

    /// Values the sync removes.
    pub fn removed(&self) -> impl Iterator<Item = &String> {
        self.before.iter().filter(|v| !self.after.contains(v))
    }
}

/// The changes for one key. Several paths share a key when their content is identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub key: AnnexKey,
    pub paths: Vec<RepoPath>,
    pub changes: Vec<FieldChange>,
}

/// Tracks whose files share one key but want different metadata: neither is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: AnnexKey,
    pub paths: Vec<RepoPath>,
    /// The fields the tracks disagree on.
    pub fields: Vec<FieldId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The fields this plan manages (names and arity, for showing the changes).
    pub managed: ManagedFields,
    /// Mixxx tracks considered (within the selection).
    pub tracks: usize,
    pub changes: Vec<FileChange>,
    /// Files whose managed fields already match.
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub conflicts: Vec<Conflict>,
}

impl Plan {
    pub fn skipped_count(&self, reason: SkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }
}

/// The files a sync is limited to (`sync PATHS...`); empty means the whole repository.
#[derive(Clone, Debug, Default)]
pub struct Selection(Vec<RepoPath>);

impl Selection {
    pub fn new(paths: Vec<RepoPath>) -> Selection {
        Selection(paths)
    }

    pub fn is_everything(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, path: &RepoPath) -> bool {
        self.0.is_empty() || self.0.iter().any(|dir| path.is_within(dir))
    }
}

/// Which tracks want metadata on which key, before looking at git-annex.
#[derive(Debug, Default)]
pub struct Targets {
    pub tracks: usize,
    /// A hash map: with 100,000 keys sharing long prefixes (`SHA256E-s…`), ordered lookups
    /// spent their time comparing strings; the plan sorts what it reports.
    pub by_key: HashMap<AnnexKey, Target>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug)]
pub struct Target {
    pub paths: Vec<RepoPath>,
    /// Indices into the library's tracks. Desired fields are computed from them when the
    /// plan is made rather than kept for every file: for 100,000 files that would double
    /// the memory a sync needs.
    pub tracks: Vec<u32>,
}

/// Resolves every Mixxx track to a key, or a reason it is skipped.
pub fn targets(
    library: &Library,
    mapper: &mut PathMapper,
    keys: &KeyMap,
    selection: &Selection,
) -> Targets {
    let mut out = Targets::default();
    for (index, track) in library.tracks.iter().enumerate() {
        let path = match mapper.map(&track.location) {
            Ok(path) => path,
            Err(Unmapped::OutsideRoot) => {
                // With a selection, a track outside the root is not under it either.
                if selection.is_everything() {
                    out.tracks += 1;
                    out.skipped.push(Skipped {
                        location: String::from_utf8_lossy(&track.location).into_owned(),
                        reason: SkipReason::OutsideRoot,
                    });
                }
                continue;
            }
        };
        if !selection.contains(&path) {
            continue;
        }
        out.tracks += 1;
        let skip = |reason| Skipped {
            location: path.to_string_lossy(),
            reason,
        };
        if track.mixxx_deleted {
            out.skipped.push(skip(SkipReason::RemovedFromMixxx));
            continue;
        }
        let (indexed, key) = match keys.get(&path) {
            None => {
                out.skipped.push(skip(SkipReason::NotInRepository));
                continue;
            }
            Some((_, Entry::Plain)) => {
                out.skipped.push(skip(SkipReason::NotAnnexed));
                continue;
            }
            Some((_, Entry::NonUtf8Key(_))) => {
                out.skipped.push(skip(SkipReason::KeyNotUtf8));
                continue;
            }
            Some((indexed, Entry::Annexed(key))) => (indexed, key),
        };
        match out.by_key.get_mut(key) {
            None => {
                out.by_key.insert(
                    key.clone(),
                    Target {
                        paths: vec![indexed.clone()],
                        tracks: vec![index as u32],
                    },
                );
            }
            Some(target) => {
                if !target.paths.contains(indexed) {
                    target.paths.push(indexed.clone());
                }
                target.tracks.push(index as u32);
            }
        }
    }
    out
}

/// Diffs desired against current metadata, field by field, managed fields only.
pub fn plan(
    targets: Targets,
    library: &Library,
    current: &HashMap<AnnexKey, FieldSet>,
    managed: &ManagedFields,
) -> Plan {
    let empty = FieldSet::new();
    let reader = managed.reader(library);
    let mut plan = Plan {
        managed: managed.clone(),
        tracks: targets.tracks,
        skipped: targets.skipped,
        ..Plan::default()
    };
    for (key, target) in targets.by_key {
        let mut wanted = target.tracks.iter().map(|&i| reader.desired(i as usize));
        let desired = wanted.next().unwrap_or_default();
        // Tracks whose files share one key (identical content) share its metadata.
        let mut disagreeing: Vec<FieldId> = Vec::new();
        for other in wanted {
            for (field, name) in managed.iter() {
                if desired.get(name) != other.get(name) && !disagreeing.contains(&field) {
                    disagreeing.push(field);
                }
            }
        }
        if !disagreeing.is_empty() {
            plan.conflicts.push(Conflict {
                key,
                paths: target.paths,
                fields: disagreeing,
            });
            continue;
        }
        let now = current.get(&key).unwrap_or(&empty);
        let changes = diff(&desired, now, managed);
        if changes.is_empty() {
            plan.unchanged += 1;
        } else {
            plan.changes.push(FileChange {
                key,
                paths: target.paths,
                changes,
            });
        }
    }
    plan.changes.sort_by(|a, b| a.paths.cmp(&b.paths));
    plan.conflicts.sort_by(|a, b| a.paths.cmp(&b.paths));
    plan
}

/// The managed fields whose value sets differ. Any difference counts, including a field that
/// holds several values after a merge of concurrent edits in two clones.
pub fn diff(desired: &FieldSet, current: &FieldSet, managed: &ManagedFields) -> Vec<FieldChange> {
    // One merge over three name-sorted sequences instead of two searches per field: this
    // runs for every file of every sync.
    let mut desired = desired.iter().peekable();
    let mut current = current.iter().peekable();
    let mut changes = Vec::new();
    for (field, name) in managed.iter_by_name() {
        let take = |fields: &mut std::iter::Peekable<_>| -> &[String] {
            while fields
                .next_if(|(n, _): &(&str, &[String])| *n < name)
                .is_some()
            {}
            fields
                .next_if(|(n, _): &(&str, &[String])| *n == name)
                .map_or(&[][..], |(_, v)| v)
        };
        let (after, before) = (take(&mut desired), take(&mut current));
        if after != before {
            changes.push(FieldChange {
                field,
                before: before.to_vec(),
                after: after.to_vec(),
            });
        }
    }
    // Table order is the order changes are shown in.
    changes.sort_by_key(|c| c.field);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> FieldSet {
        pairs.iter().copied().collect()
    }

    #[test]
    fn diff_ignores_unmanaged_fields_and_equal_values() {
        let managed =
            ManagedFields::new(&[FieldId::Rating, FieldId::Crate], &Default::default()).unwrap();
        let desired = set(&[("rating", "5"), ("crate", "A")]);
        let current = set(&[("rating", "5"), ("crate", "A"), ("tag", "x")]);
        assert!(diff(&desired, &current, &managed).is_empty());
    }

    #[test]
    fn diff_reports_set_removed_and_multivalued() {
        let managed = ManagedFields::all();
        let desired = set(&[("rating", "5"), ("crate", "A"), ("crate", "B")]);
        let current = set(&[
            ("rating", "4"),
            ("rating", "5"),
            ("crate", "A"),
            ("comment", "old"),
        ]);
        let changes = diff(&desired, &current, &managed);
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: FieldId::Rating,
                    before: vec!["4".into(), "5".into()],
                    after: vec!["5".into()],
                },
                FieldChange {
                    field: FieldId::Comment,
                    before: vec!["old".into()],
                    after: vec![],
                },
                FieldChange {
                    field: FieldId::Crate,
                    before: vec!["A".into()],
                    after: vec!["A".into(), "B".into()],
                },
            ]
        );
    }
}
