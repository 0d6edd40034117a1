//! The sync: Mixxx tracks → desired fields per file → [`plan::Plan`] (diff against the
//! current git-annex metadata) → apply through git-annex → record the sync.

pub mod base;
pub mod beatgrid;
pub mod cues;
pub mod fields;
pub mod import;
pub mod merge;
pub mod plan;
pub mod quiet;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::annex::cache::Freshness;
use crate::annex::writer::{self, FailureKind, Tally, WriteOptions, WriteRequest};
use crate::annex::{KeyMap, Repo, lock, snapshot, state};
use crate::error::Result;
use crate::mixxx::MixxxDb;
use crate::mixxx::paths::PathMapper;
use crate::model::{AnnexKey, RepoPath};
use base::{Agreed, BaseStore, LazyBase, Stamp};
use fields::{FieldId, ManagedFields};
use merge::Prefer;
use plan::{BaseCheck, Plan, Selection};

/// Where a sync reports what it is doing. The sync only calls these; how (or whether) they
/// show is the caller's business, so `sync` never depends on the terminal code in `report`.
pub trait Progress: Sync {
    /// An indeterminate phase begins (ends the previous one).
    fn phase(&self, name: &'static str);
    /// A phase of `len` steps begins (ends the previous one).
    fn start_bar(&self, name: &'static str, len: u64);
    /// `done` of the current bar's steps are complete (a position, not an increment).
    fn set_position(&self, done: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Where the data comes from and which fields are managed: everything resolved from flags,
/// environment and config before the sync starts.
pub struct Inputs {
    pub repo: Repo,
    pub mixxx_db: PathBuf,
    /// `mixxx_music_root`: the folder that, in Mixxx's paths, is the repository root.
    pub music_root: Option<PathBuf>,
    pub managed: ManagedFields,
    /// `[sync] writer` / `--writer`: who writes the git-annex branch.
    pub writer: writer::Writer,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub dry_run: bool,
    pub batch_size: Option<usize>,
    pub jobs: usize,
    pub selection: Selection,
    pub freshness: Freshness,
    /// How conflicts are settled (`--prefer`).
    pub prefer: Prefer,
}

/// Wall time of each phase, in order, for `-v` and the benchmark.
pub type Timings = Vec<(&'static str, Duration)>;

/// A file git-annex did not accept.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub key: AnnexKey,
    pub paths: Vec<RepoPath>,
    /// Serialized as its `Display` text.
    #[serde(serialize_with = "serialize_display")]
    pub reason: FailureKind,
}

fn serialize_display<S: serde::Serializer>(
    value: &FailureKind,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Everything a sync did, for the report.
#[derive(Debug)]
pub struct Outcome {
    pub plan: Plan,
    pub dry_run: bool,
    pub written: usize,
    pub failed: Vec<Failure>,
    /// Files left unwritten because the user interrupted the run (not failures: a rerun
    /// writes them).
    pub not_written: usize,
    pub commits: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
    pub timings: Timings,
    /// Problems that lost nothing but deserve a line (the base could not be saved).
    pub warnings: Vec<String>,
}

/// Reads both sides and computes the plan; writes nothing. Used by `sync`, `sync --dry-run`
/// and `status`. `freshness` says whether the git reads may use the persistent caches
/// (`sync --all` reads everything from scratch).
pub fn prepare(
    inputs: &Inputs,
    selection: &Selection,
    freshness: Freshness,
    prefer: Prefer,
    progress: &dyn Progress,
) -> Result<(Plan, Timings)> {
    let how = Reading {
        selection,
        freshness,
        prefer,
        settling: false,
        keep_tracks: false,
    };
    let (plan, read, timings) = read_and_plan(inputs, &how, progress, None)?;
    std::thread::spawn(move || drop(read));
    Ok((plan, timings))
}

/// What a plan was made from, for moving the base after the run.
pub(crate) struct Read {
    pub(crate) base: LazyBase,
    /// The inputs' stamp, when this run may store one (a sync of everything).
    stamp: Option<Stamp>,
    /// The fields this database could supply, for the quiet stamp ([`quiet::Stored`]), and its
    /// tracks' file being written, when the run was asked to keep them.
    tracks: Option<(String, TracksSaved)>,
}

/// The tracks' file, written while the run goes on: its checksum, once written.
///
/// Written as soon as the tracks are compared, then dropped: held to the end, the records of
/// 100,000 tracks were 15 MB of a first sync's peak. A run that fails after writing it costs
/// the next one only its shortcut: the stamp names the checksum of the file it goes with.
type TracksSaved = std::thread::JoinHandle<std::io::Result<u64>>;

fn save_tracks(tracks: quiet::Tracks, base_file: &std::path::Path) -> TracksSaved {
    let file = base_file.to_path_buf();
    std::thread::spawn(move || tracks.save(&file))
}

/// How a run reads: what it plans, and what it keeps for after.
pub(crate) struct Reading<'a> {
    pub selection: &'a Selection,
    pub freshness: Freshness,
    pub prefer: Prefer,
    /// A sync that will move the base: the plan also lists the unchanged files whose base
    /// must move, unless the stamp says an earlier run settled exactly these inputs; a dry
    /// run or `status` skips that check.
    pub settling: bool,
    /// Keep what the quiet stamp stores of the tracks ([`Read::tracks`]).
    pub keep_tracks: bool,
}

/// This Mixxx's library as a run read it.
pub(crate) struct MixxxRead {
    library: crate::mixxx::Library,
    schema_version: Option<u32>,
    /// The change marker, taken before reading.
    marker: Vec<u8>,
    time: Duration,
}

fn read_mixxx(inputs: &Inputs) -> Result<MixxxRead> {
    let started = Instant::now();
    let marker = crate::mixxx::change_marker(&inputs.mixxx_db);
    let db = MixxxDb::open(&inputs.mixxx_db)?;
    let library = db.read_library(&inputs.managed.request())?;
    Ok(MixxxRead {
        library,
        schema_version: db.schema().version,
        marker,
        time: started.elapsed(),
    })
}

/// [`prepare`], also handing back the base it read. `mixxx` is the library when the caller
/// has read it already.
pub(crate) fn read_and_plan(
    inputs: &Inputs,
    how: &Reading<'_>,
    progress: &dyn Progress,
    mixxx: Option<MixxxRead>,
) -> Result<(Plan, Read, Timings)> {
    let Reading {
        selection,
        freshness,
        prefer,
        settling,
        keep_tracks,
    } = *how;
    let mut timings = Timings::new();
    // The Mixxx database and the git index are independent: read them side by side (SQLite
    // in a thread, git in child processes), so the slower one sets the pace.
    progress.phase("Reading the Mixxx library and the repository");
    let (mixxx, keys) = std::thread::scope(|scope| {
        let read = mixxx.is_none().then(|| scope.spawn(|| read_mixxx(inputs)));
        let started = Instant::now();
        let keys = KeyMap::read_with(&inputs.repo, &|path| selection.contains(path), freshness)
            .map(|keys| (keys, started.elapsed()));
        let mixxx = match read {
            Some(read) => read.join().expect("the Mixxx reader does not panic"),
            None => Ok(mixxx.expect("read already")),
        };
        (mixxx, keys)
    });
    // A Mixxx problem is reported first, as when the reads ran one after the other.
    let MixxxRead {
        library,
        schema_version,
        marker: mixxx_marker,
        time: mixxx_time,
    } = mixxx?;
    let (keys, keys_time) = keys?;
    timings.push(("mixxx read", mixxx_time));
    timings.push(("key map (alongside)", keys_time));

    let mut phase = Instant::now();
    let mut lap = |name, timings: &mut Timings| {
        timings.push((name, phase.elapsed()));
        phase = Instant::now();
    };

    let (managed, mut warnings) = fields_and_warnings(inputs, &library, schema_version);
    let mut mapper = PathMapper::new(&inputs.repo.root, inputs.music_root.as_deref());
    let targets = plan::targets(&library, &mut mapper, &keys, selection);
    let outside = targets.outside_root().count();
    if outside * 2 > targets.tracks {
        let folder = plan::likely_music_root(&targets, &keys).unwrap_or_default();
        if outside == targets.tracks {
            return Err(crate::Error::WrongMusicRoot {
                tracks: outside,
                root: inputs
                    .music_root
                    .clone()
                    .unwrap_or(inputs.repo.root.clone()),
                folder,
            });
        }
        warnings.push(format!(
            "{outside} of {} Mixxx tracks are outside the music root; most of them start with {folder:?}\nhint: {}",
            targets.tracks,
            crate::error::music_root_hint(&folder)
        ));
    }
    drop(keys);
    lap("resolve", &mut timings);

    progress.phase("Reading git-annex metadata");
    let wanted: Vec<&AnnexKey> = targets.by_key.iter().map(|(key, _)| key).collect();
    let (current, repo_state) = snapshot::read_with_state(&inputs.repo, &wanted, freshness)?;
    lap("metadata read", &mut timings);

    let base = LazyBase::new(base_file(inputs));
    let stamp = (settling && selection.is_everything()).then(|| {
        // Order-independent, so the key map's hash order does not matter.
        let keys = wanted
            .iter()
            .map(|k| crate::annex::cache::checksum(k.as_str().as_bytes()))
            .fold(0u64, |acc, h| {
                acc ^ h.rotate_left(17).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ h
            })
            .to_le_bytes();
        let setup = format!("{managed:?} {}", setup(inputs, prefer));
        Stamp::new([
            mixxx_marker.as_slice(),
            repo_state.as_bytes(),
            &keys,
            &(wanted.len() as u64).to_le_bytes(),
            setup.as_bytes(),
        ])
    });
    let stamp_current = stamp.as_ref().is_some_and(|s| s.is_stored(base.file()));
    let check = match (settling, stamp_current) {
        (false, _) => BaseCheck::Skip,
        (true, false) => BaseCheck::EveryFile,
        (true, true) => BaseCheck::Settled,
    };
    let tracks = keep_tracks.then(|| {
        let tracks = quiet::Tracks::of(&library, &targets);
        (format!("{managed:?}"), save_tracks(tracks, base.file()))
    });
    let mut plan = plan::plan(targets, &library, &current, &managed, &base, prefer, check);
    plan.warnings = warnings;
    // Freeing 100,000 tracks and metadata sets string by string takes a noticeable part of a
    // no-op sync; let a thread do it while the report is printed (or the process exits).
    std::thread::spawn(move || drop((library, current)));
    lap(
        match check {
            BaseCheck::Settled => "plan (base check skipped: inputs as the last sync settled them)",
            _ => "plan",
        },
        &mut timings,
    );
    progress.finish();
    let read = Read {
        base,
        stamp,
        tracks,
    };
    Ok((plan, read, timings))
}

/// The plan of a run whose inputs are all as the quiet run of `stored` left them but the
/// Mixxx database: only the files whose tracks' fields changed are read and planned, the
/// others have the plan they had then (nothing to do). When a track came, went or moved,
/// the run reads everything (with the library already read).
fn read_and_plan_mixxx_changes(
    inputs: &Inputs,
    how: &Reading<'_>,
    stored: quiet::Stored,
    progress: &dyn Progress,
) -> Result<(Plan, Read, Timings)> {
    progress.phase("Reading the Mixxx library");
    let (mixxx, library) = std::thread::scope(|scope| {
        let library = scope.spawn(|| stored.library(&base_file(inputs)));
        let mixxx = read_mixxx(inputs);
        (
            mixxx,
            library.join().expect("reading the tracks does not panic"),
        )
    });
    let mixxx = mixxx?;
    let started = Instant::now();
    let (managed, _) = fields_and_warnings(inputs, &mixxx.library, mixxx.schema_version);
    let fields = format!("{managed:?}");
    let changed = match (fields == stored.fields, library) {
        (true, Some(library)) => library.compare(&mixxx.library),
        _ => None,
    };
    let Some(quiet::Changed { files, now }) = changed else {
        return read_and_plan(inputs, how, progress, Some(mixxx));
    };
    let mut timings = vec![
        ("mixxx read", mixxx.time),
        (quiet::COMPARED, started.elapsed()),
    ];
    let mut phase = Instant::now();
    let mut lap = |name, timings: &mut Timings| {
        timings.push((name, phase.elapsed()));
        phase = Instant::now();
    };
    let base = LazyBase::new(base_file(inputs));
    let replanned = files.len();
    let mut plan = match files.is_empty() {
        true => Plan {
            managed: managed.clone(),
            prefer: how.prefer,
            ..Plan::default()
        },
        false => {
            progress.phase("Reading git-annex metadata");
            // A few files: their logs are read directly, which leaves the metadata cache to
            // the next full read rather than bringing all of it up to date.
            let wanted: Vec<AnnexKey> = files.iter().map(|(key, _)| key.clone()).collect();
            let current = snapshot::Snapshot::from_map(snapshot::read(&inputs.repo, &wanted)?);
            lap("metadata read (changed files)", &mut timings);
            let targets = plan::Targets {
                tracks: 0,
                by_key: files,
                skipped: Vec::new(),
            };
            let plan = plan::plan(
                targets,
                &mixxx.library,
                &current,
                &managed,
                &base,
                how.prefer,
                BaseCheck::EveryFile,
            );
            lap("plan (changed files)", &mut timings);
            plan
        }
    };
    // The other files are as the quiet run found them: unchanged, and their tracks skipped
    // or not as then.
    plan.tracks = stored.tracks;
    plan.unchanged += stored.unchanged.saturating_sub(replanned);
    plan.skipped = stored.skipped;
    plan.warnings = stored.warnings;
    std::thread::spawn(move || drop(mixxx));
    progress.finish();
    let tracks = Some((fields, save_tracks(now, base.file())));
    let read = Read {
        base,
        stamp: None,
        tracks,
    };
    Ok((plan, read, timings))
}

/// The managed fields this database can supply, with a warning for each one it cannot and
/// for a git-annex setting that fights one of them.
fn fields_and_warnings(
    inputs: &Inputs,
    library: &crate::mixxx::Library,
    schema_version: Option<u32>,
) -> (ManagedFields, Vec<String>) {
    let (managed, mut warnings) = readable_fields(&inputs.managed, library, schema_version);
    if inputs.repo.genmetadata
        && managed.annex_name(FieldId::Year) == "year"
        && managed.contains(FieldId::Year)
    {
        warnings.push(
            "annex.genmetadata is on: git-annex sets year, month and day from file dates, and this sync replaces git-annex's year with Mixxx's (or removes it where Mixxx has none), leaving month and day\nhint: keep both with [sync.names] year = \"mixxx-year\" in the config"
                .to_string(),
        );
    }
    (managed, warnings)
}

/// The managed fields this database can supply, and a warning for each one it cannot. A
/// field whose column (or crate table) an older Mixxx lacks has no value here, which is not
/// an empty one: managed, it would plan its removal from every file, and a laptop with an
/// older Mixxx would wipe what the others curated. It is left alone for this run.
fn readable_fields(
    managed: &ManagedFields,
    library: &crate::mixxx::Library,
    schema_version: Option<u32>,
) -> (ManagedFields, Vec<String>) {
    let unreadable = managed.unreadable(library);
    let revision = schema_version.map_or("unknown".to_string(), |v| v.to_string());
    // The cue fields are one choice (`cues`) and share one source: one warning for them.
    let first_cue = unreadable.iter().position(|f| f.is_cue());
    let warnings = unreadable
        .iter()
        .enumerate()
        .filter(|(i, f)| !f.is_cue() || Some(*i) == first_cue)
        .map(|(_, field)| {
            let source = match field.def().source {
                fields::Source::Columns(columns) => {
                    let names = columns.iter().map(|c| c.name).collect::<Vec<_>>().join("/");
                    if columns.iter().all(|c| library.missing_columns.contains(&c.name)) {
                        format!("no {names} column")
                    } else {
                        format!("no readable value in its {names} column")
                    }
                }
                fields::Source::Crates => "no crates tables".to_string(),
                fields::Source::Cues => "no cues table".to_string(),
            };
            let name = match field.is_cue() {
                true => FieldId::CUES_GROUP,
                false => field.name(),
            };
            format!(
                "{name} is not synced in this run: this Mixxx database (schema revision {revision}) has {source}; the repository's values are left as they are"
            )
        })
        .collect();
    let mut readable = managed.without(&unreadable);
    readable.options.mixxx_revision = schema_version;
    (readable, warnings)
}

/// `work` over the items `0..n` in order, split into one contiguous range per core (up to
/// four; one below 4,096 items, where threads cost more than they save), each range's results
/// in order: deciding per file or per track is most of a no-op sync's time.
fn on_cores<R: Send>(n: usize, work: impl Fn(std::ops::Range<usize>) -> Vec<R> + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get().min(4));
    let threads = if n < 4096 { 1 } else { threads };
    let per_thread = n.div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n)
            .step_by(per_thread)
            .map(|start| scope.spawn(move || work(start..(start + per_thread).min(n))))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("the workers do not panic"))
            .collect()
    })
}

/// The whole sync. With `dry_run`, stops after the plan.
pub fn run(
    inputs: &Inputs,
    options: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let started = Instant::now();
    // Before reading: a run that planned while another was writing would write it all again.
    let _lock = match options.dry_run {
        true => None,
        false => Some(lock::acquire(&inputs.repo, "sync", &|holder| {
            say_err!("waiting for {holder} to finish…")
        })?),
    };
    let leftover = match options.dry_run {
        true => 0,
        false => crate::annex::branch::commit_leftover_journal(&inputs.repo)?,
    };
    // A sync of everything whose inputs are as a sync that found nothing to do left them.
    let quiet = match (
        options.dry_run,
        options.selection.is_everything(),
        options.freshness,
    ) {
        (false, true, Freshness::UseCache) => Some(quiet::Inputs::take(
            &inputs.repo,
            &inputs.mixxx_db,
            &setup(inputs, options.prefer),
        )?),
        _ => None,
    };
    let stored = quiet.as_ref().and_then(|q| q.stored(&base_file(inputs)));
    if let (Some(quiet), Some(stored)) = (&quiet, &stored)
        && quiet.mixxx_unchanged(stored)
    {
        let plan = Plan {
            managed: inputs.managed.clone(),
            tracks: stored.tracks,
            unchanged: stored.unchanged,
            skipped: stored.skipped.clone(),
            warnings: stored.warnings.clone(),
            ..Plan::default()
        };
        return Ok(Outcome {
            plan,
            dry_run: false,
            written: 0,
            failed: Vec::new(),
            not_written: 0,
            commits: 0,
            interrupted: false,
            elapsed: started.elapsed(),
            timings: vec![(quiet::TIMING, started.elapsed())],
            warnings: Vec::new(),
        });
    }
    let how = Reading {
        selection: &options.selection,
        freshness: options.freshness,
        prefer: options.prefer,
        settling: !options.dry_run,
        keep_tracks: quiet.is_some(),
    };
    let (plan, mut read, mut timings) = match stored {
        Some(stored) => read_and_plan_mixxx_changes(inputs, &how, stored, progress)?,
        None => read_and_plan(inputs, &how, progress, None)?,
    };
    let mut outcome = Outcome {
        plan,
        dry_run: options.dry_run,
        written: 0,
        failed: Vec::new(),
        not_written: 0,
        commits: 0,
        interrupted: false,
        elapsed: Duration::ZERO,
        timings: Vec::new(),
        warnings: Vec::new(),
    };
    if leftover > 0 {
        outcome.warnings.push(format!(
            "git-annex's journal held {leftover} uncommitted change(s) an earlier run could not commit; committed them"
        ));
    }
    if cancel.load(Ordering::SeqCst) {
        outcome.interrupted = true;
        outcome.not_written = outcome.plan.outgoing_files().count();
    } else if !options.dry_run {
        let mut written = HashSet::new();
        let mut moved = None;
        if outcome.plan.outgoing_files().next().is_some() {
            // Tests make another writer act between this run's reading and its writing.
            #[cfg(debug_assertions)]
            if let Some(ms) = std::env::var("MUSIC_COMMANDER_TEST_PAUSE_BEFORE_WRITE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                std::thread::sleep(Duration::from_millis(ms));
            }
            let write_started = Instant::now();
            (written, moved) = apply(inputs, options, &mut outcome, progress, cancel)?;
            timings.push(("write + commit", write_started.elapsed()));
        }
        // Only after the writes are committed: a base ahead of the repository could make an
        // incoming change look like a local edit.
        let settling_started = Instant::now();
        let base = base_file(inputs);
        let settled = settle_base(&read, &outcome.plan, &written);
        let tracks = read.tracks.take().map(|(fields, saving)| {
            let saved = saving.join().expect("saving the tracks does not panic");
            (fields, saved)
        });
        if let Err(e) = &settled {
            outcome.warnings.push(format!(
                "could not save this clone's sync base ({e}); nothing is lost, the next sync compares without it where it must"
            ));
        }
        if let Some(quiet) = &quiet {
            let clean = settled.is_ok()
                && !outcome.interrupted
                && outcome.failed.is_empty()
                && outcome.not_written == 0;
            let plan = &outcome.plan;
            let left = match moved {
                None if clean && quiet::is_quiet(plan) => Some(quiet.clone()),
                Some(moved)
                    if clean
                        && quiet::only_outgoing(plan)
                        && written.len() == plan.outgoing_files().count() =>
                {
                    quiet.after_write(&moved)
                }
                _ => None,
            };
            match (left, tracks) {
                // Only a shortcut: failing to store it costs the next run its full reading.
                (Some(left), Some((fields, Ok(sum)))) => {
                    let stored = quiet::Stored::of(plan, written.len(), fields, sum);
                    let _ = left.store(&base, &stored);
                }
                _ => quiet::Inputs::forget(&base),
            }
        }
        timings.push(("base and stamp saved", settling_started.elapsed()));
    }
    outcome.timings = timings;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// Writes the outgoing changes; returns the keys git-annex confirmed, and how the direct
/// writer moved the branch.
fn apply(
    inputs: &Inputs,
    options: &Options,
    outcome: &mut Outcome,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(HashSet<AnnexKey>, Option<writer::BranchMove>)> {
    let plan = &outcome.plan;
    let files = plan.outgoing_files().count();
    let requests = PlannedWrites {
        files: plan.outgoing_files().collect(),
        managed: &inputs.managed,
        era: cues::era(plan.managed.options.mixxx_revision),
    };
    let time = state::now_rfc3339();
    let record = |tally: &Tally| {
        state::request(&state::SyncRecord {
            uuid: inputs.repo.uuid.clone(),
            description: None,
            time: time.clone(),
            mixxx_db: inputs.mixxx_db.display().to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            tracks: plan.tracks as u64,
            written: tally.written as u64,
            failed: tally.failed as u64,
        })
    };
    let write_options = WriteOptions {
        writer: inputs.writer,
        vector_clock: None,
        jobs: options.jobs.max(1),
        batch_size: options.batch_size,
        commit_message: format!("music-commander sync: {files} files"),
    };
    progress.start_bar("Writing metadata", requests.files.len() as u64);
    let report = writer::write(
        &inputs.repo,
        requests,
        Some(&record),
        &write_options,
        &|n| progress.set_position(n as u64),
        cancel,
    )?;
    progress.finish();

    let paths: HashMap<&AnnexKey, &Vec<RepoPath>> =
        plan.changes.iter().map(|c| (&c.key, &c.paths)).collect();
    outcome.written = report.written.len();
    let written: HashSet<AnnexKey> = report.written.into_iter().collect();
    for (key, reason) in report.failed {
        if reason == FailureKind::Interrupted {
            outcome.not_written += 1;
            continue;
        }
        outcome.failed.push(Failure {
            paths: paths.get(&key).map(|p| p.to_vec()).unwrap_or_default(),
            key,
            reason,
        });
    }
    outcome.failed.sort_by(|a, b| a.paths.cmp(&b.paths));
    outcome.commits = report.commits;
    outcome.interrupted = report.interrupted;
    Ok((written, report.moved))
}

/// The plan's outgoing changes as write requests, each made when the writer asks for it:
/// held all at once they were as large as the plan itself (a 100k first sync: ~100 MiB).
struct PlannedWrites<'a> {
    files: Vec<&'a plan::FileChange>,
    managed: &'a ManagedFields,
    era: &'static str,
}

impl writer::Requests for PlannedWrites<'_> {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn get(&self, i: usize) -> std::borrow::Cow<'_, WriteRequest> {
        let change = self.files[i];
        let mut fields: std::collections::BTreeMap<String, Vec<String>> = change
            .outgoing()
            .map(|c| {
                (
                    self.managed.annex_name(c.field).to_string(),
                    c.after().to_vec(),
                )
            })
            .collect();
        // Cue and beat-grid positions depend on the decoder: say which Mixxx line measured
        // them.
        if change.outgoing().any(|c| {
            (c.field == FieldId::BeatGrid
                || c.field
                    .cue_slot()
                    .is_some_and(|s| s != cues::CueSlot::Index))
                && !c.after().is_empty()
        }) {
            fields.insert(cues::ERA_FIELD.to_string(), vec![self.era.to_string()]);
        }
        std::borrow::Cow::Owned(WriteRequest {
            key: change.key.clone(),
            fields,
        })
    }
}

/// What a run is asked besides its selection, in a fixed form for the stamps: which fields,
/// how conflicts go, where the music is.
fn setup(inputs: &Inputs, prefer: Prefer) -> String {
    format!(
        "{:?} {prefer:?} {:?} {:?} genmetadata={}",
        inputs.managed, inputs.music_root, inputs.repo.root, inputs.repo.genmetadata
    )
}

/// This clone's base for its Mixxx database.
fn base_file(inputs: &Inputs) -> PathBuf {
    BaseStore::path(&inputs.repo.common_dir, &inputs.mixxx_db)
}

/// Moves the base forward to what both sides now agree on: files that matched, and files
/// whose outgoing changes git-annex confirmed (`written`). Writes the file only when
/// something moved, so a no-op sync stays read-only. Then stores the run's stamp, when the
/// run wrote nothing to the repository (a write changes the state the stamp was taken of).
/// The base is the one the plan was made against (the repository lock keeps it current).
fn settle_base(read: &Read, plan: &Plan, written: &HashSet<AnnexKey>) -> std::io::Result<()> {
    let mut updates = Settling {
        plan,
        written,
        entries: plan
            .base_updates
            .iter()
            .map(|(key, agreed)| (key, Settle::Matched(agreed)))
            .collect(),
    };
    let mut scratch = crate::annex::cache::Encoder::default();
    // Without a stored base (a first sync) no file holds its settlement: no need to make it.
    let stored = !plan.changes.is_empty() && !read.base.get().is_empty();
    for change in &plan.changes {
        if stored {
            let settled = plan.settled(change, written.contains(&change.key));
            if read.base.get().holds(&change.key, &settled, &mut scratch) {
                continue;
            }
        }
        updates.entries.insert(&change.key, Settle::File(change));
    }
    if !updates.entries.is_empty() {
        // Entries of files not in this run stay: a base is what the two sides last agreed
        // on, still true for a file outside the selection or one Mixxx forgot for a while.
        read.base.get().write(&updates, |_| true)?;
    }
    match &read.stamp {
        // Stored with the base file as it is now, which the write above may have replaced.
        Some(stamp) if written.is_empty() => stamp.store(read.base.file()),
        _ => Ok(()),
    }
}

/// The entries a sync moves the base to, each made when the base file is written.
struct Settling<'a> {
    plan: &'a Plan,
    written: &'a HashSet<AnnexKey>,
    entries: HashMap<&'a AnnexKey, Settle<'a>>,
}

enum Settle<'a> {
    /// A file that matches, with the values it matches on.
    Matched(&'a Agreed),
    /// A file with changes: settled as written, or not.
    File(&'a plan::FileChange),
}

impl base::Updates for Settling<'_> {
    fn keys(&self) -> Box<dyn Iterator<Item = &AnnexKey> + '_> {
        Box::new(self.entries.keys().copied())
    }

    fn contains_key(&self, key: &AnnexKey) -> bool {
        self.entries.contains_key(key)
    }

    fn get(&self, key: &AnnexKey) -> Option<std::borrow::Cow<'_, Agreed>> {
        Some(match self.entries.get(key)? {
            Settle::Matched(agreed) => std::borrow::Cow::Borrowed(*agreed),
            Settle::File(file) => {
                std::borrow::Cow::Owned(self.plan.settled(file, self.written.contains(&file.key)))
            }
        })
    }
}
