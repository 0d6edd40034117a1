//! The sync: Mixxx tracks → desired fields per file → [`plan::Plan`] (diff against the
//! current git-annex metadata) → apply through git-annex → record the sync.

pub mod fields;
pub mod plan;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::annex::cache::Freshness;
use crate::annex::writer::{self, FailureKind, Tally, WriteOptions, WriteRequest};
use crate::annex::{KeyMap, Repo, snapshot, state};
use crate::error::Result;
use crate::mixxx::MixxxDb;
use crate::mixxx::paths::PathMapper;
use crate::model::{AnnexKey, RepoPath};
use fields::ManagedFields;
use plan::{Plan, Selection};

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
}

#[derive(Clone, Debug)]
pub struct Options {
    pub dry_run: bool,
    pub batch_size: Option<usize>,
    pub jobs: usize,
    pub selection: Selection,
    pub freshness: Freshness,
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
}

/// Reads both sides and computes the plan; writes nothing. Used by `sync`, `sync --dry-run`
/// and `status`. `freshness` says whether the git reads may use the persistent caches
/// (`sync --all` reads everything from scratch).
pub fn prepare(
    inputs: &Inputs,
    selection: &Selection,
    freshness: Freshness,
    progress: &dyn Progress,
) -> Result<(Plan, Timings)> {
    let mut timings = Timings::new();
    // The Mixxx database and the git index are independent: read them side by side (SQLite
    // in a thread, git in child processes), so the slower one sets the pace.
    progress.phase("Reading the Mixxx library and the repository");
    let (library, keys) = std::thread::scope(|scope| {
        let mixxx = scope.spawn(|| {
            let started = Instant::now();
            let library = MixxxDb::open(&inputs.mixxx_db)?.read_library()?;
            Ok::<_, crate::Error>((library, started.elapsed()))
        });
        let started = Instant::now();
        let keys = KeyMap::read_with(&inputs.repo, &|path| selection.contains(path), freshness)
            .map(|keys| (keys, started.elapsed()));
        let library = mixxx.join().expect("the Mixxx reader does not panic");
        (library, keys)
    });
    // A Mixxx problem is reported first, as when the reads ran one after the other.
    let (library, mixxx_time) = library?;
    let (keys, keys_time) = keys?;
    timings.push(("mixxx read", mixxx_time));
    timings.push(("key map (alongside)", keys_time));

    let mut phase = Instant::now();
    let mut lap = |name, timings: &mut Timings| {
        timings.push((name, phase.elapsed()));
        phase = Instant::now();
    };

    let mut mapper = PathMapper::new(&inputs.repo.root, inputs.music_root.as_deref());
    let targets = plan::targets(&library, &mut mapper, &keys, selection);
    drop(keys);
    lap("resolve", &mut timings);

    progress.phase("Reading git-annex metadata");
    let wanted: Vec<AnnexKey> = targets.by_key.keys().cloned().collect();
    let current = snapshot::read_with(&inputs.repo, &wanted, freshness)?;
    lap("metadata read", &mut timings);

    let plan = plan::plan(targets, &library, &current, &inputs.managed);
    // Freeing 100,000 tracks and metadata sets string by string takes a noticeable part of a
    // no-op sync; let a thread do it while the report is printed (or the process exits).
    std::thread::spawn(move || drop((library, current)));
    lap("plan", &mut timings);
    progress.finish();
    Ok((plan, timings))
}

/// The whole sync. With `dry_run`, stops after the plan.
pub fn run(
    inputs: &Inputs,
    options: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let started = Instant::now();
    let (plan, mut timings) = prepare(inputs, &options.selection, options.freshness, progress)?;
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
    };
    if cancel.load(Ordering::SeqCst) {
        outcome.interrupted = true;
        outcome.not_written = outcome.plan.changes.len();
    } else if !options.dry_run && !outcome.plan.changes.is_empty() {
        let write_started = Instant::now();
        apply(inputs, options, &mut outcome, progress, cancel)?;
        timings.push(("write + commit", write_started.elapsed()));
    }
    outcome.timings = timings;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

fn apply(
    inputs: &Inputs,
    options: &Options,
    outcome: &mut Outcome,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<()> {
    let plan = &outcome.plan;
    let requests: Vec<WriteRequest> = plan
        .changes
        .iter()
        .map(|change| WriteRequest {
            key: change.key.clone(),
            fields: change
                .changes
                .iter()
                .map(|c| (c.field.clone(), c.after.clone()))
                .collect(),
        })
        .collect();
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
        jobs: options.jobs.max(1),
        batch_size: options.batch_size,
        commit_message: format!("music-commander sync: {} files", plan.changes.len()),
    };
    progress.start_bar("Writing metadata", requests.len() as u64);
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
    Ok(())
}
