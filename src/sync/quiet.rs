//! The quiet check: a sync whose inputs are exactly as they were when an earlier sync found
//! nothing to do has nothing to do either, and says so without reading anything; one whose
//! only moved input is the Mixxx database plans just the tracks whose values changed.
//!
//! What a sync's answer depends on, and what stands for it here (each read in microseconds,
//! one `git for-each-ref` aside):
//! - the Mixxx database: its change marker ([`crate::mixxx::change_marker`]: inode, size,
//!   mtime, SQLite's change counter, the `-wal` file), taken before the run reads it;
//! - the repository's files and keys: the git index (its file's stat; git rewrites it on every
//!   change) and every ref with `HEAD` (the key map also reads an adjusted branch's original);
//! - the repository's metadata: every ref again (all git-annex branches) and the journal's
//!   content;
//! - this clone's base file as that run left it, and what the run was asked: the managed
//!   fields with their options, `--prefer`, the music root, the repository root, the
//!   version of this program.
//!
//! The stamp of those is stored, with what that run reported, only by a sync of everything
//! that ended with nothing outgoing, incoming, conflicting, duplicated or failed — or that
//! had only outgoing changes and wrote them all with the direct writer, which says exactly
//! how it moved the git-annex branch: then the stamp is of the inputs as that write left
//! them, and only when nothing else had written in between. A later sync that computes the
//! same stamp repeats that report. Anything that moves — a `git annex sync`, a `git add`, an
//! edit to the config — makes another stamp, and the sync reads everything. A wrong
//! "changed" costs one ordinary run; a wrong "unchanged" cannot happen without one of those
//! files changing content while keeping its size, inode and nanosecond mtime.
//!
//! The Mixxx database is the one input that moves without anything to sync (Mixxx writes
//! play counts, or opens the file and writes nothing) and the one a DJ edits between syncs.
//! So the stamp leaves it out of its checksum and keeps, beside it (`.tracks`), what each
//! track's plan depended on ([`Tracks`]). With every other input as the stamp says, a run
//! reads only the Mixxx library and compares: a track that came, went or moved makes it read
//! everything; otherwise only the files whose tracks' values changed are read and planned —
//! every other file has the plan it had then, nothing to do.

use std::path::{Path, PathBuf};

use crate::annex::Repo;
use crate::annex::branch::BRANCH;
use crate::annex::cache::{Decoder, Encoder, checksum};
use crate::annex::journal::Journal;
use crate::annex::writer::BranchMove;
use crate::error::Result;
use crate::mixxx::{Library, Track};
use crate::model::{AnnexKey, RepoPath};
use crate::sync::plan::{Direction, Plan, SkipReason, Skipped, Target, Targets};

/// Format 2 keeps the Mixxx marker out of the checksum and the tracks in the body.
const MAGIC: &[u8; 8] = b"mc-quie2";

/// The name of the one phase a quiet run has, in `-v` timings.
pub const TIMING: &str = "quiet check (inputs as a sync that found nothing to do left them)";

/// The name of the phase in which a run that found only the Mixxx database moved compares
/// its tracks with the quiet stamp's, in `-v` timings.
pub const COMPARED: &str =
    "tracks compared (inputs but the Mixxx database as a sync that found nothing to do left them)";

/// The inputs of a run, taken before it reads them.
#[derive(Clone)]
pub struct Inputs {
    mixxx: Vec<u8>,
    index: Vec<u8>,
    head: Vec<u8>,
    /// `for-each-ref`: `<oid> <refname>` lines, sorted by name.
    refs: Vec<u8>,
    journal: Vec<u8>,
    setup: Vec<u8>,
}

impl Inputs {
    /// `setup` is what the run was asked (fields, options, roots), in a fixed form.
    pub fn take(repo: &Repo, mixxx_db: &Path, setup: &str) -> Result<Inputs> {
        let mixxx = crate::mixxx::change_marker(mixxx_db);
        let index = crate::fingerprint::file(&index_file(repo));
        let head = std::fs::read(repo.git_dir.join("HEAD")).unwrap_or_default();
        let refs = repo.git_output(&["for-each-ref", "--format=%(objectname) %(refname)"])?;
        let mut journal = Journal::open(repo)?;
        journal.preload()?;
        Ok(Inputs {
            mixxx,
            index,
            head,
            refs,
            journal: journal.fingerprint(),
            setup: setup.as_bytes().to_vec(),
        })
    }

    /// The inputs as a direct write left them, when they are exactly these with the
    /// git-annex branch moved from the head these saw to the write's commit: it built on
    /// that head and there was no journal to fold in. Otherwise something else wrote
    /// meanwhile, which no run has read yet: None.
    pub fn after_write(&self, moved: &BranchMove) -> Option<Inputs> {
        if !self.journal.is_empty() || moved.journal_committed {
            return None;
        }
        let before = format!("{} {BRANCH}", moved.from);
        let mut refs = Vec::with_capacity(self.refs.len());
        let mut found = false;
        for line in self.refs.split_inclusive(|&b| b == b'\n') {
            if line.strip_suffix(b"\n").unwrap_or(line) == before.as_bytes() {
                refs.extend_from_slice(format!("{} {BRANCH}\n", moved.to).as_bytes());
                found = true;
            } else {
                refs.extend_from_slice(line);
            }
        }
        found.then(|| Inputs {
            refs,
            ..self.clone()
        })
    }

    /// What the last quiet run stored, when every input but the Mixxx database is as it
    /// left them (with `base_file` as it is now). [`Inputs::mixxx_unchanged`] says whether
    /// the database is too.
    pub fn stored(&self, base_file: &Path) -> Option<Stored> {
        let bytes = std::fs::read(path(base_file)).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (sum, body) = rest.split_first_chunk::<8>()?;
        if u64::from_le_bytes(*sum) != self.sum(base_file, body) {
            return None;
        }
        Stored::decode(body)
    }

    /// Whether the Mixxx database is as `stored`'s run read it: then that run's report is
    /// this one's, with nothing read.
    pub fn mixxx_unchanged(&self, stored: &Stored) -> bool {
        stored.mixxx == self.mixxx
    }

    /// Stores these inputs with the report of a run that left nothing to do, for
    /// `base_file` as it is now; the report names the tracks' file [`Tracks::save`] wrote.
    /// Temp file + rename; a failure only costs the shortcut.
    pub fn store(&self, base_file: &Path, report: &Stored) -> std::io::Result<()> {
        let body = report.encode(&self.mixxx);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.sum(base_file, &body).to_le_bytes());
        out.extend_from_slice(&body);
        replace(&path(base_file), &out)
    }

    /// Forgets the stored inputs (a run that did something, or was asked something else).
    pub fn forget(base_file: &Path) {
        let _ = std::fs::remove_file(path(base_file));
        let _ = std::fs::remove_file(tracks_path(base_file));
    }

    /// Every input but the Mixxx marker, which the body holds: a run that finds only the
    /// database moved compares its tracks with the stored ones.
    fn sum(&self, base_file: &Path, body: &[u8]) -> u64 {
        let mut bytes = Vec::new();
        for part in [
            &self.index,
            &self.head,
            &self.refs,
            &self.journal,
            &self.setup,
            &crate::fingerprint::file(base_file),
            &env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        ] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(body);
        checksum(&bytes)
    }
}

/// What a quiet run reported, enough to report it again, and what each of its tracks'
/// plans depended on.
pub struct Stored {
    pub tracks: usize,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// The managed fields this database could supply (their `Debug` form): a Mixxx
    /// upgrade that makes a column readable changes the plan of tracks whose values did not.
    pub fields: String,
    /// The checksum of the tracks' file, which is read only on demand
    /// ([`Stored::library`]): a run that finds the Mixxx database unchanged too needs none.
    library_sum: u64,
    /// The Mixxx change marker the run took before reading.
    mixxx: Vec<u8>,
}

impl Stored {
    /// What a run of `plan` would report once its `written` files match too; `fields` as
    /// [`Stored`] says, `library_sum` what [`Tracks::save`] returned.
    pub fn of(plan: &Plan, written: usize, fields: String, library_sum: u64) -> Stored {
        Stored {
            tracks: plan.tracks,
            unchanged: plan.unchanged + written,
            skipped: plan.skipped.clone(),
            warnings: plan.warnings.clone(),
            fields,
            library_sum,
            mixxx: Vec::new(),
        }
    }

    /// The tracks that run stored, from their file next to `base_file`.
    pub fn library(&self, base_file: &Path) -> Option<Tracks> {
        let bytes = std::fs::read(tracks_path(base_file)).ok()?;
        if checksum(&bytes) != self.library_sum {
            return None;
        }
        let mut d = Decoder::new(&bytes);
        let tracks = Tracks::decode(&mut d)?;
        d.is_empty().then_some(Tracks {
            on_disk: Some(self.library_sum),
            ..tracks
        })
    }

    fn encode(&self, mixxx: &[u8]) -> Vec<u8> {
        let mut out = Encoder::default();
        out.bytes(mixxx);
        out.u64(self.library_sum);
        out.len(self.tracks);
        out.len(self.unchanged);
        out.len(self.skipped.len());
        for s in &self.skipped {
            out.u8(SkipReason::ALL
                .iter()
                .position(|r| *r == s.reason)
                .expect("every reason is listed") as u8);
            out.bytes(s.location.as_bytes());
        }
        out.len(self.warnings.len());
        for w in &self.warnings {
            out.bytes(w.as_bytes());
        }
        out.bytes(self.fields.as_bytes());
        out.as_slice().to_vec()
    }

    fn decode(body: &[u8]) -> Option<Stored> {
        let mut d = Decoder::new(body);
        let mixxx = d.bytes()?.to_vec();
        let library_sum = d.u64()?;
        let tracks = d.len()?;
        let unchanged = d.len()?;
        let n = d.count(5)?;
        let mut skipped = Vec::with_capacity(n);
        for _ in 0..n {
            let reason = *SkipReason::ALL.get(d.u8()? as usize)?;
            skipped.push(Skipped {
                location: d.string()?.to_string(),
                reason,
            });
        }
        let n = d.count(4)?;
        let mut warnings = Vec::with_capacity(n);
        for _ in 0..n {
            warnings.push(d.string()?.to_string());
        }
        let fields = d.string()?.to_string();
        d.is_empty().then_some(Stored {
            tracks,
            unchanged,
            skipped,
            warnings,
            fields,
            library_sum,
            mixxx,
        })
    }
}

/// What the plan of each Mixxx track depended on besides the repository, in the library's
/// order: its id, its location (and whether Mixxx removed it), the fields it should have,
/// and the file it resolved to. With the repository and the base as a quiet run left them,
/// a track whose three match has the plan it had then — nothing to do — so a run that finds
/// only the Mixxx database moved (Mixxx opened it, a DJ rated a few tracks) plans just the
/// files whose tracks' values changed.
pub struct Tracks {
    records: Vec<Record>,
    /// Where each file's entry (key, then its paths) starts in `files`.
    offsets: Vec<u32>,
    files: Vec<u8>,
    /// The checksum of the tracks' file, while these are exactly what it holds: a run that
    /// finds no track changed does not write it again.
    on_disk: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Record {
    id: i64,
    place: u64,
    /// [`Library::digest`]: what the fields it should have are made from; 0 for a skipped
    /// track (not compared).
    values: u64,
    /// Its file in `Tracks::offsets`, or [`SKIPPED`].
    file: u32,
}

const SKIPPED: u32 = u32::MAX;
const RECORD_LEN: usize = 28;

/// What the tracks a run of [`Tracks::compare`] found changed: the files to plan, with
/// their tracks; the tracks as they are now.
pub struct Changed {
    pub files: Vec<(AnnexKey, Target)>,
    pub now: Tracks,
}

impl Tracks {
    /// The tracks of `library` as `targets` resolved them.
    pub fn of(library: &Library, targets: &Targets) -> Tracks {
        let mut file_of = vec![SKIPPED; library.tracks.len()];
        let mut offsets = Vec::with_capacity(targets.by_key.len());
        let mut files = Encoder::default();
        for (n, (key, target)) in targets.by_key.iter().enumerate() {
            offsets.push(u32::try_from(files.as_slice().len()).expect("under 4 GiB of paths"));
            files.bytes(key.as_str().as_bytes());
            files.len(target.paths.len());
            for p in &target.paths {
                files.bytes(p.as_bytes());
            }
            for &t in &target.tracks {
                file_of[t as usize] = n as u32;
            }
        }
        let values = digests(library, |i| file_of[i] != SKIPPED);
        let records = library
            .tracks
            .iter()
            .zip(file_of)
            .zip(values)
            .map(|((track, file), values)| Record {
                id: track.id,
                place: place(track),
                values,
                file,
            })
            .collect();
        Tracks {
            records,
            offsets,
            files: files.as_slice().to_vec(),
            on_disk: None,
        }
    }

    /// `library`'s tracks against these: None when a track came, went, moved or was removed
    /// in Mixxx (what it resolves to needs the repository's files, read in full); else the
    /// files whose tracks' fields changed.
    pub fn compare(self, library: &Library) -> Option<Changed> {
        if library.tracks.len() != self.records.len()
            || library
                .tracks
                .iter()
                .zip(&self.records)
                .any(|(t, r)| t.id != r.id || place(t) != r.place)
        {
            return None;
        }
        let values = digests(library, |i| self.records[i].file != SKIPPED);
        let mut changed: Vec<u32> = self
            .records
            .iter()
            .zip(&values)
            .filter(|(r, v)| r.values != **v)
            .map(|(r, _)| r.file)
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let mut files: Vec<(AnnexKey, Target)> = Vec::with_capacity(changed.len());
        for &file in &changed {
            let start = *self.offsets.get(file as usize)? as usize;
            let mut d = Decoder::new(self.files.get(start..)?);
            let key = AnnexKey::new(d.string()?);
            let n = d.count(4)?;
            let mut paths = Vec::with_capacity(n);
            for _ in 0..n {
                paths.push(RepoPath::from_bytes(d.bytes()?));
            }
            files.push((
                key,
                Target {
                    paths,
                    tracks: Vec::new(),
                },
            ));
        }
        // Every track of a changed file, the unchanged ones too: files shared by several
        // tracks are planned on all of them.
        for (i, r) in self.records.iter().enumerate() {
            if let Ok(slot) = changed.binary_search(&r.file) {
                files[slot].1.tracks.push(i as u32);
            }
        }
        let same = self
            .records
            .iter()
            .zip(&values)
            .all(|(r, v)| r.values == *v);
        let records = self
            .records
            .iter()
            .zip(values)
            .map(|(r, values)| Record { values, ..*r })
            .collect();
        let on_disk = self.on_disk.filter(|_| same);
        Some(Changed {
            files,
            now: Tracks {
                records,
                on_disk,
                ..self
            },
        })
    }

    /// Writes the tracks' file next to `base_file` (unless it holds these already) and
    /// returns its checksum, for [`Stored::of`].
    pub fn save(&self, base_file: &Path) -> std::io::Result<u64> {
        if let Some(sum) = self.on_disk {
            return Ok(sum);
        }
        let mut out = Encoder::default();
        self.encode(&mut out);
        replace(&tracks_path(base_file), out.as_slice())?;
        Ok(checksum(out.as_slice()))
    }

    fn encode(&self, out: &mut Encoder) {
        let mut records = Vec::with_capacity(self.records.len() * RECORD_LEN);
        for r in &self.records {
            records.extend_from_slice(&r.id.to_le_bytes());
            records.extend_from_slice(&r.place.to_le_bytes());
            records.extend_from_slice(&r.values.to_le_bytes());
            records.extend_from_slice(&r.file.to_le_bytes());
        }
        out.bytes(&records);
        let offsets: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        out.bytes(&offsets);
        out.bytes(&self.files);
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Tracks> {
        let records = d.bytes()?;
        let offsets = d.bytes()?;
        let files = d.bytes()?.to_vec();
        if records.len() % RECORD_LEN != 0 || offsets.len() % 4 != 0 {
            return None;
        }
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let offsets: Vec<u32> = offsets
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let records = records
            .chunks_exact(RECORD_LEN)
            .map(|b| Record {
                id: word(&b[0..8]) as i64,
                place: word(&b[8..16]),
                values: word(&b[16..24]),
                file: u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")),
            })
            .collect::<Vec<_>>();
        let sound = records
            .iter()
            .all(|r| r.file == SKIPPED || (r.file as usize) < offsets.len())
            && offsets.iter().all(|&o| (o as usize) < files.len());
        sound.then_some(Tracks {
            records,
            offsets,
            files,
            on_disk: None,
        })
    }
}

/// Where a track is in Mixxx: its location, and whether Mixxx removed it (which skips it).
fn place(track: &Track) -> u64 {
    checksum(&track.location) ^ u64::from(track.mixxx_deleted)
}

/// [`Library::digest`] of each track `wanted` says, 0 for the others; on every core, as the
/// plan's own pass over the tracks.
fn digests(library: &Library, wanted: impl Fn(usize) -> bool + Sync) -> Vec<u64> {
    super::on_cores(library.tracks.len(), |range| {
        let mut scratch = Vec::new();
        range
            .map(|i| match wanted(i) {
                true => library.digest(i, &mut scratch),
                false => 0,
            })
            .collect()
    })
}

/// Whether a finished run may store its inputs as quiet: it found nothing to do at all.
pub fn is_quiet(plan: &Plan) -> bool {
    plan.changes.is_empty() && plan.duplicates.is_empty()
}

/// Whether a run leaves nothing to do once its outgoing changes are written: nothing
/// incoming, conflicting or duplicated.
pub fn only_outgoing(plan: &Plan) -> bool {
    plan.duplicates.is_empty()
        && plan
            .changes
            .iter()
            .all(|c| !c.has(Direction::Incoming) && !c.has(Direction::Conflict))
}

/// Where the stamp of `base_file` is kept.
fn path(base_file: &Path) -> PathBuf {
    let mut name = base_file.as_os_str().to_os_string();
    name.push(".quiet");
    PathBuf::from(name)
}

/// Where the tracks of the stamp of `base_file` are kept.
fn tracks_path(base_file: &Path) -> PathBuf {
    let mut name = base_file.as_os_str().to_os_string();
    name.push(".tracks");
    PathBuf::from(name)
}

/// Writes `bytes` to `file` through a temp file and a rename.
fn replace(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// The index git reads for this work tree (`GIT_INDEX_FILE` when the user set one).
fn index_file(repo: &Repo) -> PathBuf {
    match std::env::var_os("GIT_INDEX_FILE") {
        Some(file) => {
            let file = PathBuf::from(file);
            match file.is_absolute() {
                true => file,
                false => repo.root.join(file),
            }
        }
        None => repo.git_dir.join("index"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixxx::{Column, Value};
    use crate::sync::fields::ManagedFields;
    use proptest::prelude::*;

    /// Small domains, so that distinct tracks often hold equal values and values that clean
    /// to the same field (crate names differing in spaces) or not.
    fn value(kind: u8, pick: u8) -> Value {
        match (kind, pick % 4) {
            (_, 0) => Value::Null,
            (0, p) => Value::Integer(i64::from(p)),
            (1, p) => Value::Real([120.0, 120.5, 0.0][usize::from(p) - 1]),
            (_, p) => Value::Text(["", "Song", "Song "][usize::from(p) - 1].to_string()),
        }
    }

    proptest! {
        /// The invariant the comparison rests on: tracks with equal digests want equal
        /// fields. (A digest that ignored an input would fail it: some pair differing only
        /// there would share a digest and want different fields.)
        #[test]
        fn equal_digests_want_equal_fields(
            rows in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 0u8..8), 2..12),
            names in proptest::collection::vec(prop_oneof![Just("Festival"), Just("Festival "), Just("  "), Just("Warm-up")], 3),
        ) {
            let tracks = rows
                .iter()
                .map(|&(_, _, _, crates)| crate::mixxx::Track {
                    crates: (0..3u32).filter(|c| crates & (1 << c) != 0).collect(),
                    ..Default::default()
                })
                .collect();
            let column = |kind: u8, pick: fn(&(u8, u8, u8, u8)) -> u8| {
                rows.iter().map(|r| value(kind, pick(r))).collect::<Vec<_>>()
            };
            let library = Library::from_values(
                tracks,
                names.iter().map(|n| n.to_string()).collect(),
                vec![
                    (Column::integer("rating"), column(0, |r| r.0)),
                    (Column::real("bpm"), column(1, |r| r.1)),
                    (Column::text("title"), column(2, |r| r.2)),
                ],
            );
            let managed = ManagedFields::all();
            let reader = managed.reader(&library);
            let digests = digests(&library, |_| true);
            for i in 0..rows.len() {
                for j in 0..rows.len() {
                    if digests[i] == digests[j] {
                        prop_assert_eq!(reader.desired(i), reader.desired(j));
                    }
                }
            }
        }
    }

    #[test]
    fn tracks_round_trip_through_their_file_and_a_changed_track_is_found() {
        let library = Library::from_values(
            (1..=3)
                .map(|id| crate::mixxx::Track {
                    id,
                    location: format!("/music/{id}.flac").into_bytes(),
                    ..Default::default()
                })
                .collect(),
            Vec::new(),
            vec![(
                Column::integer("rating"),
                vec![Value::Integer(1), Value::Integer(2), Value::Integer(3)],
            )],
        );
        let targets = Targets {
            tracks: 3,
            by_key: vec![(
                AnnexKey::new("SHA256E-s1--a.flac"),
                Target {
                    paths: vec![RepoPath::from_bytes("a.flac")],
                    tracks: vec![0, 2],
                },
            )],
            skipped: Vec::new(),
        };
        let tracks = Tracks::of(&library, &targets);
        let mut out = Encoder::default();
        tracks.encode(&mut out);
        let decoded = Tracks::decode(&mut Decoder::new(out.as_slice())).unwrap();
        assert_eq!(decoded.records, tracks.records);
        // Unchanged: nothing to plan.
        let same = decoded.compare(&library).unwrap();
        assert!(same.files.is_empty());
        let with_ratings = |tracks: Vec<crate::mixxx::Track>, ratings: [i64; 3]| {
            Library::from_values(
                tracks,
                Vec::new(),
                vec![(
                    Column::integer("rating"),
                    ratings.into_iter().map(Value::Integer).collect(),
                )],
            )
        };
        let stored = || Tracks::decode(&mut Decoder::new(out.as_slice())).unwrap();
        // The second track of the file changed (the first did not): the file, with both.
        let changed = stored()
            .compare(&with_ratings(library.tracks.clone(), [1, 2, 5]))
            .unwrap();
        assert_eq!(changed.files.len(), 1);
        assert_eq!(changed.files[0].0.as_str(), "SHA256E-s1--a.flac");
        assert_eq!(changed.files[0].1.tracks, vec![0, 2]);
        assert_eq!(
            changed.files[0].1.paths,
            vec![RepoPath::from_bytes("a.flac")]
        );
        // A skipped track's change plans nothing.
        let skipped = stored()
            .compare(&with_ratings(library.tracks.clone(), [1, 4, 3]))
            .unwrap();
        assert!(skipped.files.is_empty());
        // A moved track: None, the caller reads everything.
        let mut moved = library.tracks.clone();
        moved[1].location = b"/music/elsewhere.flac".to_vec();
        assert!(stored().compare(&with_ratings(moved, [1, 2, 3])).is_none());
        // A truncated file is no file.
        assert!(
            Tracks::decode(&mut Decoder::new(
                &out.as_slice()[..out.as_slice().len() - 3]
            ))
            .is_none()
        );
    }
}
