//! The plan: which files get which field changes. Pure: Mixxx tracks, the key map and the
//! current metadata go in, a [`Plan`] comes out. Nothing here touches a process or a file.

use std::collections::HashMap;

use crate::annex::cache::Encoder;
use crate::annex::snapshot::Snapshot;
use crate::annex::{Entry, KeyMap};
use crate::mixxx::Library;
use crate::mixxx::paths::{PathMapper, Unmapped};
use crate::model::{AnnexKey, FieldSet, RepoPath};
use crate::sync::base::{Agreed, LazyBase};
use crate::sync::fields::{FieldId, ManagedFields};
use crate::sync::merge::{self, Prefer};

mod values;

use values::Packed;
pub use values::Values;

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

/// Which way a field's change goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Changed in this Mixxx since the base: `sync` writes it to the repository.
    Outgoing,
    /// Changed in the repository since the base (another clone, or a hand edit): `sync`
    /// leaves it; `import` brings it into Mixxx.
    Incoming,
    /// Changed differently on both sides: neither is applied.
    Conflict,
}

impl Direction {
    pub const ALL: [Direction; 3] = [
        Direction::Outgoing,
        Direction::Incoming,
        Direction::Conflict,
    ];
}

/// One field of one file, three ways: this Mixxx, the repository and the base, and the change
/// to make on one side (empty values = absent).
///
/// The values are packed in one buffer ([`values`]), and the new values are not stored again
/// when they are one side's (as they mostly are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: FieldId,
    pub direction: Direction,
    after: After,
    /// This Mixxx's values, the repository's, the base's (none when this clone knows no base
    /// for the field), then the new values when they are neither side's.
    values: Packed,
}

/// Where a change's new values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Mixxx,
    Repo,
    /// Last in `values`, after the base.
    Own,
}

impl FieldChange {
    /// The change of `field` going `direction` to `after`, with the three sides' values.
    pub fn new(
        field: FieldId,
        direction: Direction,
        mixxx: &[String],
        repo: &[String],
        base: Option<&[String]>,
        after: Vec<String>,
    ) -> FieldChange {
        let (where_after, own) = if after.as_slice() == mixxx {
            (After::Mixxx, &[][..])
        } else if after.as_slice() == repo {
            (After::Repo, &[][..])
        } else {
            (After::Own, after.as_slice())
        };
        FieldChange {
            field,
            direction,
            after: where_after,
            values: Packed::new([Some(mixxx), Some(repo), base], own),
        }
    }

    /// This Mixxx's values.
    pub fn mixxx(&self) -> Values<'_> {
        self.values.list(0).unwrap_or_default()
    }

    /// The repository's values.
    pub fn repo(&self) -> Values<'_> {
        self.values.list(1).unwrap_or_default()
    }

    /// What the two last agreed on; `None` when this clone knows no base for the field.
    pub fn base(&self) -> Option<Values<'_>> {
        self.values.list(2)
    }

    /// The changed side's values after the change: the repository's for an outgoing change,
    /// this Mixxx's for an incoming one. For a conflict, the repository's, unchanged.
    pub fn after(&self) -> Values<'_> {
        match self.after {
            After::Mixxx => self.mixxx(),
            After::Repo => self.repo(),
            After::Own => self.values.list(3).unwrap_or_default(),
        }
    }

    /// The changed side's values before the change.
    pub fn before(&self) -> Values<'_> {
        match self.direction {
            Direction::Incoming => self.mixxx(),
            Direction::Outgoing | Direction::Conflict => self.repo(),
        }
    }

    /// Values the change adds (element-wise, for a multi-valued field).
    pub fn added(&self) -> impl Iterator<Item = &str> {
        let before = self.before();
        self.after().iter().filter(move |v| !before.contains(v))
    }

    /// Values the change removes.
    pub fn removed(&self) -> impl Iterator<Item = &str> {
        let after = self.after();
        self.before().iter().filter(move |v| !after.contains(v))
    }
}

/// The changes for one key. Several paths share a key when their content is identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub key: AnnexKey,
    pub paths: Vec<RepoPath>,
    /// `library.id` of every Mixxx track on this key (several when files share a content):
    /// where `import` writes.
    pub track_ids: Vec<i64>,
    /// In table order; a multi-valued field may have an outgoing and an incoming part.
    pub changes: Vec<FieldChange>,
    /// The managed fields both sides already hold, with at least one value: with `changes`,
    /// all [`Plan::settled`] needs to make the base this file moves to. Not kept as two
    /// [`Agreed`]s per file (written / unwritten) with every managed field named: for a first
    /// sync of 100,000 files those were most of the run's memory.
    pub agreed: Vec<(FieldId, Vec<String>)>,
}

impl FileChange {
    pub fn outgoing(&self) -> impl Iterator<Item = &FieldChange> {
        self.changes
            .iter()
            .filter(|c| c.direction == Direction::Outgoing)
    }

    pub fn has(&self, direction: Direction) -> bool {
        self.changes.iter().any(|c| c.direction == direction)
    }
}

/// Tracks whose files share one key but want different metadata: neither is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub key: AnnexKey,
    /// One path when the same file is in the Mixxx library twice.
    pub paths: Vec<RepoPath>,
    /// The fields the tracks disagree on.
    pub fields: Vec<FieldId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The fields this plan manages (names and arity, for showing the changes).
    pub managed: ManagedFields,
    /// How its conflicts were settled (`--prefer`): [`Plan::settled`] needs it.
    pub prefer: Prefer,
    /// Mixxx tracks considered (within the selection).
    pub tracks: usize,
    /// Files with anything outgoing, incoming or conflicting, sorted by path.
    pub changes: Vec<FileChange>,
    /// Files whose managed fields already match.
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub duplicates: Vec<Duplicate>,
    /// Files that match whose stored base is not what they match on: the base moves there
    /// when a sync runs, even one that writes nothing.
    pub base_updates: Vec<(AnnexKey, Agreed)>,
    /// What the run should say before its report: fields this database cannot supply, most
    /// tracks outside the music root.
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn skipped_count(&self, reason: SkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }

    /// Files a sync writes (with at least one outgoing change).
    pub fn outgoing_files(&self) -> impl Iterator<Item = &FileChange> {
        self.changes.iter().filter(|c| c.has(Direction::Outgoing))
    }

    pub fn files(&self, direction: Direction) -> impl Iterator<Item = &FileChange> {
        self.changes.iter().filter(move |c| c.has(direction))
    }

    /// The base to keep for `file` once its outgoing changes are written (`written`), or when
    /// they are not (a dry run, a failed write, nothing outgoing): per managed field, the
    /// values both sides then hold, or what [`merge::settle`] makes of the three; a field
    /// without a known base is left out. Made on demand, one file at a time.
    pub fn settled(&self, file: &FileChange, written: bool) -> Agreed {
        let mut agreed = Agreed::new();
        for (field, name) in self.managed.iter_by_name_shared() {
            if let Some((_, values)) = file.agreed.iter().find(|(f, _)| *f == field) {
                agreed.push(name, values.clone());
                continue;
            }
            // Every field whose sides differ has at least one change, and each of them
            // carries the field's three values.
            let Some(change) = file.changes.iter().find(|c| c.field == field) else {
                agreed.push(name, Vec::new());
                continue;
            };
            let (m, r) = (change.mixxx().to_vec(), change.repo().to_vec());
            let b = change.base().map(Values::to_vec);
            let b = b.as_deref();
            let arity = field.arity();
            let repo_preferred =
                self.prefer == Prefer::Repo && merge::merge(arity, &m, &r, b).conflict;
            let settled = if repo_preferred {
                // Settled for this clone: from now on the repository's value is an incoming
                // change here, never this Mixxx's edit to send again.
                Some(m)
            } else if written {
                let now = file
                    .changes
                    .iter()
                    .find(|c| c.field == field && c.direction == Direction::Outgoing)
                    .map_or(r, |c| c.after().to_vec());
                merge::settle(arity, &m, &now, b)
            } else {
                merge::settle(arity, &m, &r, b)
            };
            if let Some(values) = settled {
                agreed.push(name, values);
            }
        }
        agreed
    }

    /// Field changes going `direction`, over every file.
    pub fn count(&self, direction: Direction) -> usize {
        self.changes
            .iter()
            .flat_map(|c| &c.changes)
            .filter(|c| c.direction == direction)
            .count()
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
    /// One entry per key, in no particular order (the plan sorts what it reports). Built
    /// through a hash map that borrows the key map's keys: with 100,000 keys sharing long
    /// prefixes (`SHA256E-s…`), ordered lookups spent their time comparing strings.
    pub by_key: Vec<(AnnexKey, Target)>,
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
    let mut slots: HashMap<&AnnexKey, usize> = HashMap::new();
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
        match slots.get(key) {
            None => {
                slots.insert(key, out.by_key.len());
                out.by_key.push((
                    key.clone(),
                    Target {
                        paths: vec![indexed.clone()],
                        tracks: vec![index as u32],
                    },
                ));
            }
            Some(&slot) => {
                let target = &mut out.by_key[slot].1;
                if !target.paths.contains(indexed) {
                    target.paths.push(indexed.clone());
                }
                target.tracks.push(index as u32);
            }
        }
    }
    out
}

impl Targets {
    /// Tracks whose location is not under the music root.
    pub fn outside_root(&self) -> impl Iterator<Item = &str> {
        self.skipped
            .iter()
            .filter(|s| s.reason == SkipReason::OutsideRoot)
            .map(|s| s.location.as_str())
    }
}

/// The folder that, in Mixxx's locations outside the root, most likely is this repository:
/// the one most of them start with where the rest names a file in the repository (as a moved
/// or remounted music folder leaves them), else their longest common folder, else their most
/// common parent folder.
pub fn likely_music_root(targets: &Targets, keys: &KeyMap) -> Option<String> {
    // A sample is enough to vote, and bounds the lookups on a library of 100,000 tracks.
    let outside: Vec<&str> = targets.outside_root().take(2000).collect();
    let mut votes: HashMap<&str, usize> = HashMap::new();
    for location in &outside {
        let found = location.match_indices('/').map(|(i, _)| i).find(|&i| {
            i > 0
                && keys
                    .get(&RepoPath::from_bytes(&location.as_bytes()[i + 1..]))
                    .is_some()
        });
        if let Some(i) = found {
            *votes.entry(&location[..i]).or_default() += 1;
        }
    }
    if let Some((folder, _)) = votes
        .into_iter()
        .max_by_key(|&(folder, n)| (n, std::cmp::Reverse(folder)))
    {
        return Some(folder.to_string());
    }
    let parents: Vec<&str> = outside
        .iter()
        .filter_map(|l| l.rsplit_once('/').map(|(dir, _)| dir))
        .filter(|dir| !dir.is_empty())
        .collect();
    let mut common = *parents.first()?;
    for dir in &parents[1..] {
        while !(dir.starts_with(common)
            && matches!(dir.as_bytes().get(common.len()), None | Some(b'/')))
        {
            common = common.rsplit_once('/').map_or("", |(up, _)| up);
        }
    }
    if !common.is_empty() {
        return Some(common.to_string());
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for dir in &parents {
        *counts.entry(dir).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(dir, n)| (n, std::cmp::Reverse(dir)))
        .map(|(dir, _)| dir.to_string())
}

/// Which files that match a run checks against their stored base (only a sync moves it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseCheck {
    /// None: a dry run or `status`, which move no base.
    Skip,
    /// Every file that matches; those whose base must move are listed in `base_updates`.
    EveryFile,
    /// None either, because the [`super::base::Stamp`] says an earlier run saw exactly these
    /// inputs and settled every matching file already.
    Settled,
}

/// Compares, per file and managed field, this Mixxx (`library`), the repository
/// (`current`) and the base (`base`): see [`super::merge`] for the rules. `prefer` settles
/// conflicts; `check` says which matching files are checked against their base.
pub fn plan(
    targets: Targets,
    library: &Library,
    current: &Snapshot,
    managed: &ManagedFields,
    base: &LazyBase,
    prefer: Prefer,
    check: BaseCheck,
) -> Plan {
    let reader = managed.reader(library);
    let mut plan = Plan {
        managed: managed.clone(),
        prefer,
        tracks: targets.tracks,
        skipped: targets.skipped,
        ..Plan::default()
    };
    let targets = targets.by_key;
    // Most files match, and deciding that (their desired fields, compared with the encoded
    // repository entry and the base) is most of a no-op sync's time: it runs on every core.
    // The files it cannot settle are planned below, one by one.
    let settled: Vec<Option<Option<Agreed>>> = super::on_cores(targets.len(), |range| {
        let mut scratch = Encoder::default();
        targets[range]
            .iter()
            .map(|(key, target)| {
                // Files on several tracks (shared content) are checked for agreement below.
                let [track] = target.tracks[..] else {
                    return None;
                };
                let desired = reader.desired(track as usize);
                let names = managed.iter_by_name().map(|(_, n)| n);
                if !current.matches(key, &desired, names) {
                    return None;
                }
                let moves = check == BaseCheck::EveryFile
                    && !base
                        .get()
                        .holds_fields(key, &desired, managed, &mut scratch);
                Some(moves.then(|| Agreed::from_fields(&desired, managed)))
            })
            .collect()
    });
    // At most one per file left unsettled: grown by doubling instead, a 100k first sync's
    // list had 4 MB to spare.
    plan.changes
        .reserve_exact(settled.iter().filter(|s| s.is_none()).count());
    let mut scratch = Encoder::default();
    for ((key, target), settled) in targets.into_iter().zip(settled) {
        if let Some(base_update) = settled {
            plan.unchanged += 1;
            if let Some(agreed) = base_update {
                plan.base_updates.push((key, agreed));
            }
            continue;
        }
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
            plan.duplicates.push(Duplicate {
                key,
                paths: target.paths,
                fields: disagreeing,
            });
            continue;
        }
        // Most files match: that is decided on the repository's encoded entry, and only a
        // file that differs has its current fields decoded.
        let matches = current.matches(&key, &desired, managed.iter_by_name().map(|(_, n)| n));
        if matches {
            plan.unchanged += 1;
            if check == BaseCheck::EveryFile
                && !base
                    .get()
                    .holds_fields(&key, &desired, managed, &mut scratch)
            {
                let agreed = Agreed::from_fields(&desired, managed);
                plan.base_updates.push((key, agreed));
            }
            continue;
        }
        let now = current.fields(&key).unwrap_or_default();
        let now = &now;
        let stored = base.get().get(&key);
        let mut file = FileChange {
            track_ids: target
                .tracks
                .iter()
                .map(|&i| library.tracks[i as usize].id)
                .collect(),
            key,
            paths: target.paths,
            changes: Vec::new(),
            agreed: Vec::new(),
        };
        for (field, name) in managed.iter_by_name() {
            let m = desired.get(name).unwrap_or(&[]);
            let r = now.get(name).unwrap_or(&[]);
            if m == r {
                if !m.is_empty() {
                    file.agreed.push((field, m.to_vec()));
                }
                continue;
            }
            let b = stored.as_ref().and_then(|s| s.get(name));
            let merged = merge::merge(field.arity(), m, r, b);
            // `before` is the changed side's values: the repository's, or this Mixxx's for an
            // incoming change (`FieldChange::before`).
            let three_way = |direction, before: &[String], after: Vec<String>| {
                debug_assert_eq!(
                    before,
                    if direction == Direction::Incoming {
                        m
                    } else {
                        r
                    }
                );
                FieldChange::new(field, direction, m, r, b, after)
            };
            // The base each outcome moves to is made from these when the base is settled
            // (`Plan::settled`), not kept here.
            match (merged.conflict, prefer) {
                (true, Prefer::Mixxx) => {
                    file.changes
                        .push(three_way(Direction::Outgoing, r, m.to_vec()));
                }
                (true, Prefer::Repo) => {
                    file.changes
                        .push(three_way(Direction::Incoming, m, r.to_vec()));
                }
                (true, Prefer::Neither) => {
                    file.changes
                        .push(three_way(Direction::Conflict, r, r.to_vec()))
                }
                (false, _) => {
                    if let Some(out) = merged.outgoing {
                        file.changes.push(three_way(Direction::Outgoing, r, out));
                    }
                    if let Some(inc) = merged.incoming {
                        file.changes.push(three_way(Direction::Incoming, m, inc));
                    }
                }
            }
        }
        file.changes.sort_by_key(|c| (c.field, c.direction));
        // Grown by doubling, a first sync's ten changes per file sat in room for sixteen:
        // at 100,000 files, 75 MiB of nothing.
        file.changes.shrink_to_fit();
        file.agreed.shrink_to_fit();
        plan.changes.push(file);
    }
    plan.changes.sort_by(|a, b| a.paths.cmp(&b.paths));
    plan.duplicates.sort_by(|a, b| a.paths.cmp(&b.paths));
    plan
}

/// A managed field whose two sides differ: this Mixxx's values and the repository's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub field: FieldId,
    pub mixxx: Vec<String>,
    pub repo: Vec<String>,
}

/// The managed fields whose value sets differ. Any difference counts, including a field that
/// holds several values after a merge of concurrent edits in two clones.
pub fn diff(desired: &FieldSet, current: &FieldSet, managed: &ManagedFields) -> Vec<Difference> {
    // One merge over the two name-sorted sets, visiting only the fields present on either
    // side: this runs for every file of every sync, and most of the managed fields (the cue
    // slots) are absent on most files.
    let mut desired = desired.iter().peekable();
    let mut current = current.iter().peekable();
    let mut changes = Vec::new();
    loop {
        let name = match (desired.peek(), current.peek()) {
            (None, None) => break,
            (Some((a, _)), None) => *a,
            (None, Some((b, _))) => *b,
            (Some((a, _)), Some((b, _))) => (*a).min(*b),
        };
        let mixxx = desired
            .next_if(|(n, _)| *n == name)
            .map_or(&[][..], |(_, v)| v);
        let repo = current
            .next_if(|(n, _)| *n == name)
            .map_or(&[][..], |(_, v)| v);
        if mixxx != repo
            && let Some(field) = managed.field_named(name)
        {
            changes.push(Difference {
                field,
                mixxx: mixxx.to_vec(),
                repo: repo.to_vec(),
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

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_change_keeps_every_side_wherever_the_new_values_are() {
        let (m, r, b) = (values(&["A", "B"]), values(&["A"]), values(&["C"]));
        for (direction, after, before) in [
            (Direction::Outgoing, m.clone(), &r),
            (Direction::Outgoing, values(&["A", "B", "D"]), &r),
            (Direction::Incoming, r.clone(), &m),
            (Direction::Incoming, values(&[]), &m),
            (Direction::Conflict, r.clone(), &r),
        ] {
            for base in [None, Some(&b[..]), Some(&[][..])] {
                let c = FieldChange::new(FieldId::Crate, direction, &m, &r, base, after.clone());
                assert_eq!(c.mixxx(), &m[..]);
                assert_eq!(c.repo(), &r[..]);
                assert_eq!(c.base().map(Values::to_vec).as_deref(), base);
                assert_eq!(c.after(), &after[..], "{direction:?} {base:?}");
                assert_eq!(c.before(), &before[..]);
            }
        }
        let c = FieldChange::new(FieldId::Crate, Direction::Outgoing, &m, &r, None, m.clone());
        assert_eq!(c.added().collect::<Vec<_>>(), ["B"]);
        assert_eq!(c.removed().count(), 0);
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
                Difference {
                    field: FieldId::Rating,
                    mixxx: vec!["5".into()],
                    repo: vec!["4".into(), "5".into()],
                },
                Difference {
                    field: FieldId::Comment,
                    mixxx: vec![],
                    repo: vec!["old".into()],
                },
                Difference {
                    field: FieldId::Crate,
                    mixxx: vec!["A".into(), "B".into()],
                    repo: vec!["A".into()],
                },
            ]
        );
    }
}
