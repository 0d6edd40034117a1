//! The sync: Mixxx tracks → desired fields per file → [`plan::Plan`] (diff against the
//! current git-annex metadata) → apply through git-annex → record the sync.

pub mod base;
pub mod fields;
pub mod merge;
pub mod plan;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::annex::cache::Freshness;
use crate::annex::writer::{self, WriteOptions, WriteRequest};
use crate::annex::{KeyMap, Repo, snapshot, state};
use crate::error::Result;
use crate::mixxx::MixxxDb;
use crate::mixxx::paths::PathMapper;
use crate::model::{AnnexKey, RepoPath};
use crate::report::Progress;
use fields::ManagedFields;
use plan::{Plan, Selection};

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
    pub reason: String,
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
    progress: &Progress,
) -> Result<(Plan, Timings)> {
    let mut timings = Timings::new();
    // The Mixxx database and the git index are independent: read them side by side (SQLite
    // in a thread, git in child processes), so the slower one sets the pace.
    progress.spinner("Reading the Mixxx library and the repository");
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

    progress.spinner("Reading git-annex metadata");
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
    progress: &Progress,
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
    progress: &Progress,
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
    let record = state::SyncRecord {
        uuid: inputs.repo.uuid.clone(),
        description: None,
        time: state::now_rfc3339(),
        mixxx_db: inputs.mixxx_db.display().to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        tracks: plan.tracks as u64,
        written: plan.changes.len() as u64,
        failed: 0,
    };
    let write_options = WriteOptions {
        jobs: options.jobs.max(1),
        batch_size: options.batch_size,
        commit_message: format!("music-commander sync: {} files", plan.changes.len()),
    };
    let bar = progress.bar("Writing metadata", requests.len() as u64);
    let report = writer::write(
        &inputs.repo,
        requests,
        Some(state::request(&record)),
        &write_options,
        &|n| bar.set_position(n as u64),
        cancel,
    )?;
    progress.finish();

    let paths: HashMap<&AnnexKey, &Vec<RepoPath>> =
        plan.changes.iter().map(|c| (&c.key, &c.paths)).collect();
    let state_key = AnnexKey::new(state::STATE_KEY);
    outcome.written = report.written.iter().filter(|k| **k != state_key).count();
    for (key, reason) in report.failed.iter().filter(|(k, _)| *k != state_key) {
        if reason == writer::INTERRUPTED {
            outcome.not_written += 1;
            continue;
        }
        outcome.failed.push(Failure {
            key: key.clone(),
            paths: paths.get(key).map(|p| p.to_vec()).unwrap_or_default(),
            reason: reason.clone(),
        });
    }
    outcome.failed.sort_by(|a, b| a.paths.cmp(&b.paths));
    outcome.commits = report.commits;
    outcome.interrupted = report.interrupted;
    Ok(())
}
