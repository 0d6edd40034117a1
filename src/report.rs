//! What the user sees: progress on stderr while working, then a human table or one JSON
//! document on stdout.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use std::collections::BTreeMap;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::annex::state::SyncRecord;
use crate::model::{AnnexKey, RepoPath};
use crate::quote;
use crate::sync::fields::ManagedFields;
use crate::sync::import::{ImportOutcome, Unwritable};
use crate::sync::merge::Arity;
use crate::sync::plan::{Direction, FieldChange, FileChange, Plan, SkipReason, Skipped, Values};
use crate::sync::{self, Failure, Outcome};

/// Files listed in a human plan before it says "… and N more" (all of them with `-v`).
pub const PLAN_PREVIEW: usize = 20;

/// Progress on stderr with indicatif; draws nothing when stderr is not a terminal or with
/// `--quiet`. One bar at a time: a new phase clears the previous one.
pub struct TerminalProgress {
    enabled: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl TerminalProgress {
    pub fn new(enabled: bool) -> TerminalProgress {
        TerminalProgress {
            enabled,
            current: Mutex::new(None),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replace(&self, bar: ProgressBar) {
        if let Some(old) = self.current().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.enabled {
            // indicatif hides itself when stderr is not a terminal.
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }
}

impl sync::Progress for TerminalProgress {
    fn phase(&self, name: &'static str) {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
        );
        bar.set_message(name);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.replace(bar);
    }

    fn start_bar(&self, name: &'static str, len: u64) {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} ({eta} left)")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(name);
        self.replace(bar);
    }

    fn set_position(&self, done: u64) {
        let complete = match self.current().as_ref() {
            Some(bar) => {
                bar.set_position(done);
                bar.length().is_some_and(|len| done >= len)
            }
            None => false,
        };
        // The last reply is not the end: git-annex then commits its journal, which takes
        // seconds for thousands of files. Say so instead of sitting at "0s left".
        if complete {
            self.phase("Committing to the git-annex branch");
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.current().take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for TerminalProgress {
    /// An error ends a run without `finish`: the spinner line must not stay on screen.
    fn drop(&mut self) {
        sync::Progress::finish(self);
    }
}

/// `n` and the noun, singular or plural: `1 file`, `2 files`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// How a change of one field reads: `rating: 3 → 5`, `rating: 1, 5 → 5`,
/// `crate: +Festival −Warmup`, `comment: removed`. A conflict reads
/// `rating: Mixxx 4 · repository 1, 4 · base 3`. `field` is the git-annex name it is shown
/// under.
pub fn describe_change(change: &FieldChange, field: &str) -> String {
    let shown = |values: Values| {
        values
            .iter()
            .map(|v| shorten(v, 60))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let or_none = |values: Values| match values.is_empty() {
        true => "(none)".to_string(),
        false => shown(values),
    };
    if change.direction == Direction::Conflict {
        let base = match change.base() {
            Some(b) => or_none(b),
            None => "unknown".to_string(),
        };
        return format!(
            "{field}: Mixxx {} · repository {} · base {base}",
            or_none(change.mixxx()),
            or_none(change.repo())
        );
    }
    if change.field.arity() == Arity::Multi {
        let mut parts = Vec::new();
        for v in change.added() {
            parts.push(format!("+{}", element(v)));
        }
        for v in change.removed() {
            parts.push(format!("−{}", element(v)));
        }
        return format!("{field}: {}", parts.join(" "));
    }
    if change.after().is_empty() {
        return format!("{field}: removed");
    }
    if change.before().is_empty() {
        return format!("{field}: {}", shown(change.after()));
    }
    format!(
        "{field}: {} → {}",
        shown(change.before()),
        shown(change.after())
    )
}

/// An element of a `+added −removed` list, in double quotes when it could be misread there
/// (a space, a leading sign, a quote).
fn element(value: &str) -> String {
    let shown = shorten(value, 60);
    let ambiguous =
        value.is_empty() || value.contains(' ') || value.starts_with(['+', '-', '−', '"']);
    if ambiguous && !shown.starts_with('"') {
        format!("\"{shown}\"")
    } else {
        shown
    }
}

/// `value` cut to `max` characters (not quoted).
fn cut(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_string()
    } else {
        let cut: String = value.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// `value` cut to `max` characters, then quoted for the terminal.
fn shorten(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        quote::for_terminal(value).into_owned()
    } else {
        let cut: String = value.chars().take(max - 1).collect();
        quote::for_terminal(&format!("{cut}…")).into_owned()
    }
}

fn file_label(change: &FileChange) -> String {
    shown_paths(&change.paths, " = ")
}

/// A local path, quoted for the terminal.
pub fn quote_path(path: &Path) -> String {
    quote::bytes_for_terminal(path.as_os_str().as_encoded_bytes()).into_owned()
}

/// Paths quoted for the terminal, joined by `separator`.
fn shown_paths(paths: &[RepoPath], separator: &str) -> String {
    paths
        .iter()
        .map(|p| quote::bytes_for_terminal(p.as_bytes()))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The files with a change going `direction`, the first `limit` of them, each with those
/// changes.
pub fn render_changes(plan: &Plan, direction: Direction, limit: usize) -> String {
    let mut out = String::new();
    let files: Vec<&FileChange> = plan.files(direction).collect();
    for change in files.iter().take(limit) {
        let _ = writeln!(out, "  {}", file_label(change));
        for c in change.changes.iter().filter(|c| c.direction == direction) {
            let name = plan.managed.annex_name(c.field);
            let _ = writeln!(out, "      {}", describe_change(c, name));
        }
    }
    if files.len() > limit && limit > 0 {
        let _ = writeln!(
            out,
            "  … and {} more {} (use -v or --json to list all)",
            files.len() - limit,
            if files.len() - limit == 1 {
                "file"
            } else {
                "files"
            }
        );
    }
    out
}

/// Every direction's changes under its heading, outgoing first.
pub fn render_plan(plan: &Plan, limit: usize) -> String {
    let mut out = String::new();
    for direction in Direction::ALL {
        if limit == 0 || plan.files(direction).next().is_none() {
            continue;
        }
        let heading = match direction {
            Direction::Outgoing => "Changes:",
            Direction::Incoming => "Incoming (in the repository, not in this Mixxx yet):",
            Direction::Conflict => "Conflicts (changed on both sides; nothing written):",
        };
        let _ = writeln!(out, "{heading}");
        out.push_str(&render_changes(plan, direction, limit));
    }
    out
}

/// The closing lines about what a sync left for later: incoming changes and conflicts.
pub fn render_pending(plan: &Plan) -> String {
    let mut out = String::new();
    let incoming = plan.count(Direction::Incoming);
    if incoming > 0 {
        let _ = writeln!(
            out,
            "{} not in this Mixxx yet (music-commander import)",
            match incoming {
                1 => "1 incoming change is".to_string(),
                n => format!("{n} incoming changes are"),
            }
        );
    }
    let conflicts = plan.count(Direction::Conflict);
    if conflicts > 0 {
        let _ = writeln!(
            out,
            "{} left unwritten (sync --prefer mixxx|repo)",
            count(conflicts, "conflict", "conflicts")
        );
    }
    out
}

fn skipped_lines(plan: &Plan, out: &mut String) {
    for reason in SkipReason::ALL {
        let n = plan.skipped_count(reason);
        if n > 0 {
            let _ = writeln!(out, "    {:<38}{n:>8}", reason.describe());
        }
    }
}

/// The human summary of a sync or dry run.
pub fn render_summary(outcome: &Outcome) -> String {
    let plan = &outcome.plan;
    let mut out = String::new();
    let row = |out: &mut String, label: &str, n: usize| {
        let _ = writeln!(out, "  {label:<40}{n:>8}");
    };
    if outcome.dry_run {
        row(&mut out, "files to write", plan.outgoing_files().count());
    } else {
        row(&mut out, "files written", outcome.written);
    }
    row(&mut out, "files unchanged", plan.unchanged);
    row(
        &mut out,
        "incoming changes (not written)",
        plan.count(Direction::Incoming),
    );
    row(
        &mut out,
        "conflicts (not written)",
        plan.count(Direction::Conflict),
    );
    row(&mut out, "tracks skipped", plan.skipped.len());
    skipped_lines(plan, &mut out);
    row(
        &mut out,
        "same content, different values",
        plan.duplicates.len(),
    );
    if !outcome.dry_run {
        row(&mut out, "files failed", outcome.failed.len());
        if outcome.interrupted {
            row(
                &mut out,
                "files not written (interrupted)",
                outcome.not_written,
            );
        }
        row(&mut out, "git-annex commits", outcome.commits);
    }
    let _ = writeln!(
        out,
        "  {:<40}{:>8.2}s",
        "elapsed",
        outcome.elapsed.as_secs_f64()
    );
    for d in &plan.duplicates {
        let fields = d
            .fields
            .iter()
            .map(|&f| plan.managed.annex_name(f))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = match d.paths.as_slice() {
            [one] => writeln!(
                out,
                "not written: {} is in the Mixxx library twice, with different {fields}",
                shown_paths(std::slice::from_ref(one), "")
            ),
            paths => writeln!(
                out,
                "not written: {} have identical content (one git-annex key) but different {fields} in Mixxx",
                shown_paths(paths, ", ")
            ),
        };
    }
    for f in outcome.failed.iter().take(PLAN_PREVIEW) {
        let _ = writeln!(
            out,
            "failed: {}: {}",
            shown_paths(&f.paths, ", "),
            quote::for_terminal(&f.reason.to_string())
        );
    }
    if outcome.failed.len() > PLAN_PREVIEW {
        let _ = writeln!(
            out,
            "failed: … and {} more (use --json to list all)",
            outcome.failed.len() - PLAN_PREVIEW
        );
    }
    if outcome.interrupted {
        let _ = writeln!(
            out,
            "Interrupted: what git-annex accepted is committed; run the sync again to finish."
        );
    }
    out
}

/// How much of a sync's result to show.
#[derive(Clone, Debug)]
pub struct Detail {
    /// Only failures (and the summary when there are any).
    pub quiet: bool,
    /// How many planned files to list ([`PLAN_PREVIEW`] by default, `usize::MAX` for all).
    pub preview: usize,
    /// List every skipped track with its reason, and say "nothing to sync" only in the table.
    pub list_all: bool,
    pub timings: bool,
}

impl Default for Detail {
    fn default() -> Self {
        Detail {
            quiet: false,
            preview: PLAN_PREVIEW,
            list_all: false,
            timings: false,
        }
    }
}

/// The human report of a sync or dry run: the plan, then the summary table.
pub fn render_outcome(outcome: &Outcome, detail: &Detail) -> String {
    let plan = &outcome.plan;
    let mut out = String::new();
    if detail.quiet {
        if !outcome.failed.is_empty() {
            out.push_str(&render_summary(outcome));
        }
        return out;
    }
    if plan.changes.is_empty() && plan.duplicates.is_empty() && !detail.list_all {
        let _ = writeln!(
            out,
            "Nothing to sync: {} already match ({} skipped).",
            count(plan.tracks - plan.skipped.len(), "track", "tracks"),
            plan.skipped.len()
        );
        if detail.timings {
            out.push_str(&render_timings(&outcome.timings));
        }
        return out;
    }
    let (verb, n) = if outcome.dry_run {
        ("Would write", plan.outgoing_files().count())
    } else {
        ("Wrote", outcome.written)
    };
    // Counts first: with thousands of files the list is the part to skim, not to scroll past.
    let _ = writeln!(out, "{verb} {}.", count(n, "file", "files"));
    out.push_str(&render_summary(outcome));
    out.push_str(&render_plan(plan, detail.preview));
    if detail.list_all {
        for s in &plan.skipped {
            let _ = writeln!(
                out,
                "  skipped: {} ({})",
                quote::for_terminal(&s.location),
                s.reason.describe()
            );
        }
    }
    if detail.timings {
        out.push_str(&render_timings(&outcome.timings));
    }
    // Last, so it is what stays on screen after a long list.
    out.push_str(&render_pending(plan));
    out
}

/// Per-phase wall times (`-v`).
pub fn render_timings(timings: &[(&'static str, Duration)]) -> String {
    let mut out = String::from("timings:\n");
    for (name, d) in timings {
        let _ = writeln!(out, "  {name:<20}{:>9.3}s", d.as_secs_f64());
    }
    let _ = writeln!(out, "  {:<20}{:>9.1} MiB", "peak memory", peak_rss_mib());
    out
}

/// This process's peak resident memory so far (git and git-annex children not included).
pub fn peak_rss_mib() -> f64 {
    // Linux's VmHWM is this program's own peak. getrusage's ru_maxrss also counts the image
    // that exec replaced: started by a large parent (a benchmark holding a 270 MB report),
    // it reported the parent's 2.5 GB for a run that used 15 MB.
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
    {
        return kib / 1024.0;
    }
    // SAFETY: getrusage only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    // ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    let bytes = if cfg!(target_os = "macos") {
        usage.ru_maxrss as f64
    } else {
        usage.ru_maxrss as f64 * 1024.0
    };
    bytes / (1024.0 * 1024.0)
}

/// One field of a file, three ways.
#[derive(Serialize)]
pub struct FieldJson<'a> {
    pub direction: Direction,
    pub mixxx: Values<'a>,
    pub repo: Values<'a>,
    /// `null` when this clone knows no base for the field.
    pub base: Option<Values<'a>>,
}

/// One file and its changes going one way, as `sync --json` and `status --json` list them
/// (`changes` for outgoing, `incoming`, `conflicts`).
#[derive(Serialize)]
pub struct FileJson<'a> {
    pub paths: &'a [RepoPath],
    pub key: &'a AnnexKey,
    /// Field → its three values, for the changes of this list's direction.
    pub fields: BTreeMap<&'a str, FieldJson<'a>>,
}

impl<'a> FileJson<'a> {
    pub fn new(change: &'a FileChange, managed: &'a ManagedFields, direction: Direction) -> Self {
        FileJson {
            paths: &change.paths,
            key: &change.key,
            fields: change
                .changes
                .iter()
                .filter(|c| c.direction == direction)
                .map(|c| {
                    (
                        managed.annex_name(c.field),
                        FieldJson {
                            direction: c.direction,
                            mixxx: c.mixxx(),
                            repo: c.repo(),
                            base: c.base(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Every file with a change going `direction`, serialized as it is made.
    pub fn all(plan: &'a Plan, direction: Direction) -> FileList<'a> {
        FileList { plan, direction }
    }
}

/// The files of a plan with a change going one way, as a JSON list made while it is written:
/// a first sync of 100,000 files lists a million field changes, which as a tree of borrowed
/// views (a map per file) took more memory than the plan itself.
pub struct FileList<'a> {
    plan: &'a Plan,
    direction: Direction,
}

impl Serialize for FileList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.plan
                .files(self.direction)
                .map(|c| FileJson::new(c, &self.plan.managed, self.direction)),
        )
    }
}

/// Every file's outgoing change, as a JSON list made while it is written (see [`FileList`]).
pub struct ChangeList<'a>(&'a Plan);

impl Serialize for ChangeList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .outgoing_files()
                .map(|c| ChangeJson::new(c, &self.0.managed)),
        )
    }
}

/// One file's outgoing change: what the sync writes (`changes` in `sync --json`, `pending`
/// in `status --json`).
#[derive(Serialize)]
pub struct ChangeJson<'a> {
    #[serde(flatten)]
    pub file: FileJson<'a>,
    /// Field → its new values (fields that keep at least one value).
    pub set: BTreeMap<&'a str, Values<'a>>,
    /// Fields whose values all go.
    pub removed: Vec<&'a str>,
    /// Field → the repository's values before the change.
    pub before: BTreeMap<&'a str, Values<'a>>,
}

impl<'a> ChangeJson<'a> {
    pub fn new(change: &'a FileChange, managed: &'a ManagedFields) -> ChangeJson<'a> {
        let mut json = ChangeJson {
            file: FileJson::new(change, managed, Direction::Outgoing),
            set: BTreeMap::new(),
            removed: Vec::new(),
            before: BTreeMap::new(),
        };
        for c in change.outgoing() {
            let name = managed.annex_name(c.field);
            if c.after().is_empty() {
                json.removed.push(name);
            } else {
                json.set.insert(name, c.after());
            }
            json.before.insert(name, c.before());
        }
        json
    }

    /// Every file's outgoing change, serialized as it is made.
    pub fn all(plan: &'a Plan) -> ChangeList<'a> {
        ChangeList(plan)
    }
}

/// Tracks whose files share one key but want different values.
#[derive(Serialize)]
pub struct DuplicateJson<'a> {
    pub key: &'a AnnexKey,
    pub paths: &'a [RepoPath],
    pub fields: Vec<&'a str>,
}

impl<'a> DuplicateJson<'a> {
    pub fn all(plan: &'a Plan) -> Vec<DuplicateJson<'a>> {
        plan.duplicates
            .iter()
            .map(|c| DuplicateJson {
                key: &c.key,
                paths: &c.paths,
                fields: c
                    .fields
                    .iter()
                    .map(|&f| plan.managed.annex_name(f))
                    .collect(),
            })
            .collect()
    }
}

/// Field changes counted by direction, over every file.
#[derive(Serialize)]
pub struct DirectionCounts {
    pub outgoing: usize,
    pub incoming: usize,
    pub conflicts: usize,
}

impl DirectionCounts {
    pub fn new(plan: &Plan) -> DirectionCounts {
        DirectionCounts {
            outgoing: plan.count(Direction::Outgoing),
            incoming: plan.count(Direction::Incoming),
            conflicts: plan.count(Direction::Conflict),
        }
    }
}

/// The three-way part shared by `sync --json` and `status --json`.
#[derive(Serialize)]
pub struct ThreeWayJson<'a> {
    /// Field changes by direction.
    pub counts: DirectionCounts,
    /// Files with incoming changes.
    pub incoming: FileList<'a>,
    /// Files with conflicts.
    pub conflicts: FileList<'a>,
    /// Tracks sharing one file content but wanting different values.
    pub duplicates: Vec<DuplicateJson<'a>>,
}

impl<'a> ThreeWayJson<'a> {
    pub fn new(plan: &'a Plan) -> ThreeWayJson<'a> {
        ThreeWayJson {
            counts: DirectionCounts::new(plan),
            incoming: FileJson::all(plan, Direction::Incoming),
            conflicts: FileJson::all(plan, Direction::Conflict),
            duplicates: DuplicateJson::all(plan),
        }
    }
}

/// Skipped tracks counted by reason (every reason, zeros included).
#[derive(Serialize)]
#[serde(transparent)]
pub struct SkipCounts(BTreeMap<SkipReason, usize>);

impl SkipCounts {
    pub fn new(plan: &Plan) -> SkipCounts {
        SkipCounts(
            SkipReason::ALL
                .into_iter()
                .map(|r| (r, plan.skipped_count(r)))
                .collect(),
        )
    }
}

/// File counts of a sync (`files` in `sync --json`).
#[derive(Serialize)]
pub struct FileCounts {
    pub to_write: usize,
    pub written: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub not_written: usize,
    /// Files with incoming changes / with conflicts (neither is written).
    pub incoming: usize,
    pub conflicts: usize,
    /// Files whose tracks share one content but want different values.
    pub duplicates: usize,
}

#[derive(Serialize)]
pub struct TimingJson {
    pub phase: &'static str,
    pub seconds: f64,
}

/// The `--json` document of a sync or dry run.
#[derive(Serialize)]
pub struct OutcomeJson<'a> {
    pub dry_run: bool,
    pub interrupted: bool,
    pub tracks: usize,
    pub files: FileCounts,
    pub skipped: SkipCounts,
    pub skipped_tracks: &'a [Skipped],
    pub commits: usize,
    pub elapsed_seconds: f64,
    pub changes: ChangeList<'a>,
    #[serde(flatten)]
    pub three_way: ThreeWayJson<'a>,
    pub failed: &'a [Failure],
    pub timings: Vec<TimingJson>,
    pub peak_memory_mib: f64,
}

impl<'a> OutcomeJson<'a> {
    pub fn new(outcome: &'a Outcome) -> OutcomeJson<'a> {
        let plan = &outcome.plan;
        OutcomeJson {
            dry_run: outcome.dry_run,
            interrupted: outcome.interrupted,
            tracks: plan.tracks,
            files: FileCounts {
                to_write: plan.outgoing_files().count(),
                written: outcome.written,
                unchanged: plan.unchanged,
                failed: outcome.failed.len(),
                not_written: outcome.not_written,
                incoming: plan.files(Direction::Incoming).count(),
                conflicts: plan.files(Direction::Conflict).count(),
                duplicates: plan.duplicates.len(),
            },
            skipped: SkipCounts::new(plan),
            skipped_tracks: &plan.skipped,
            commits: outcome.commits,
            elapsed_seconds: outcome.elapsed.as_secs_f64(),
            changes: ChangeJson::all(plan),
            three_way: ThreeWayJson::new(plan),
            failed: &outcome.failed,
            timings: outcome
                .timings
                .iter()
                .map(|&(phase, d)| TimingJson {
                    phase,
                    seconds: d.as_secs_f64(),
                })
                .collect(),
            peak_memory_mib: peak_rss_mib(),
        }
    }
}

/// The `status --json` document: the pending plan (in the shapes `sync --json` uses) and the
/// recorded syncs.
#[derive(Serialize)]
pub struct StatusJson<'a> {
    pub repository: &'a Path,
    pub uuid: &'a str,
    pub mixxx_db: &'a Path,
    /// False when the database does not exist: the counts are then zero and only `syncs`,
    /// the clones' records, says anything.
    pub mixxx_db_found: bool,
    pub tracks: usize,
    pub files_to_write: usize,
    pub files_unchanged: usize,
    pub tracks_skipped: usize,
    pub skipped: SkipCounts,
    pub skipped_tracks: &'a [Skipped],
    /// Outgoing changes: what a sync would write.
    pub pending: ChangeList<'a>,
    #[serde(flatten)]
    pub three_way: ThreeWayJson<'a>,
    pub syncs: &'a [SyncRecord],
}

impl<'a> StatusJson<'a> {
    pub fn new(
        repository: &'a Path,
        uuid: &'a str,
        mixxx_db: &'a Path,
        plan: Option<&'a Plan>,
        syncs: &'a [SyncRecord],
    ) -> StatusJson<'a> {
        static NO_PLAN: std::sync::LazyLock<Plan> = std::sync::LazyLock::new(Plan::default);
        let mixxx_db_found = plan.is_some();
        let plan = plan.unwrap_or(&NO_PLAN);
        StatusJson {
            repository,
            uuid,
            mixxx_db,
            mixxx_db_found,
            tracks: plan.tracks,
            files_to_write: plan.outgoing_files().count(),
            files_unchanged: plan.unchanged,
            tracks_skipped: plan.skipped.len(),
            skipped: SkipCounts::new(plan),
            skipped_tracks: &plan.skipped,
            pending: ChangeJson::all(plan),
            three_way: ThreeWayJson::new(plan),
            syncs,
        }
    }
}

/// Pretty JSON of a report document (serializing these structs cannot fail).
pub fn to_json(doc: &impl Serialize) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default()
}

/// Writes a report document as pretty JSON and a newline to `out`, as it is serialized: the
/// same bytes as [`to_json`], without holding the whole text (hundreds of MiB for a first
/// sync of 100,000 files).
pub fn write_json(out: impl std::io::Write, doc: &impl Serialize) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The recorded syncs of every clone, as a table.
pub fn render_records(records: &[SyncRecord], this_uuid: &str) -> String {
    let mut out = String::new();
    if records.is_empty() {
        out.push_str("No sync recorded yet in this repository.\n");
        return out;
    }
    let _ = writeln!(out, "Last sync of each clone:");
    for r in records {
        let who = match &r.description {
            Some(d) if !d.is_empty() => format!(
                "{} ({})",
                quote::for_terminal(d),
                quote::for_terminal(&r.uuid)
            ),
            _ => quote::for_terminal(&r.uuid).into_owned(),
        };
        let here = if r.uuid == this_uuid {
            " [this clone]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {who}{here}\n      {}  {}, {} changed, music-commander {}, from {}",
            quote::for_terminal(&r.time),
            count(r.tracks as usize, "track", "tracks"),
            count(r.written as usize, "file", "files"),
            quote::for_terminal(&r.tool_version),
            quote::for_terminal(&r.mixxx_db)
        );
    }
    out
}

/// The closing lines of an import: what it left for `sync` and the conflicts it left alone.
pub fn render_import_pending(outcome: &ImportOutcome) -> String {
    let plan = &outcome.plan;
    let mut out = String::new();
    let outgoing = plan.count(Direction::Outgoing);
    if outgoing > 0 {
        let _ = writeln!(
            out,
            "{} not in the repository yet (music-commander sync)",
            match outgoing {
                1 => "1 change made in this Mixxx is".to_string(),
                n => format!("{n} changes made in this Mixxx are"),
            }
        );
    }
    let conflicts = plan.count(Direction::Conflict);
    if conflicts > 0 {
        let _ = writeln!(
            out,
            "{} left alone: `import --prefer repo` writes the repository's value into Mixxx, `sync --prefer mixxx` sends this Mixxx's",
            count(conflicts, "conflict", "conflicts")
        );
    }
    if !outcome.unwritable.is_empty() {
        let _ = writeln!(
            out,
            "{} not importable (listed above with the reason)",
            count(outcome.unwritable.len(), "value is", "values are")
        );
    }
    out
}

/// The repository values an import does not write, one line each with its reason.
fn render_unwritable(outcome: &ImportOutcome, limit: usize) -> String {
    let mut out = String::new();
    if outcome.unwritable.is_empty() || limit == 0 {
        return out;
    }
    let _ = writeln!(out, "Not importable (left as they are in this Mixxx):");
    for u in outcome.unwritable.iter().take(limit) {
        let values = match u.values.as_slice() {
            [] => "(none)".to_string(),
            v => v.iter().map(|v| cut(v, 60)).collect::<Vec<_>>().join(", "),
        };
        // Quoted as one line: the reason may start with a quoted value.
        let line = format!("{}: {values}: {}", u.field, u.reason);
        let _ = writeln!(
            out,
            "  {}\n      {}",
            shown_paths(&u.paths, " = "),
            quote::for_terminal(&line)
        );
    }
    if outcome.unwritable.len() > limit {
        let _ = writeln!(
            out,
            "  … and {} more (use -v or --json to list all)",
            outcome.unwritable.len() - limit
        );
    }
    out
}

/// The human report of an import or its dry run.
pub fn render_import(outcome: &ImportOutcome, detail: &Detail) -> String {
    let plan = &outcome.plan;
    let mut out = String::new();
    if detail.quiet {
        return out;
    }
    if outcome.to_import == 0
        && outcome.unwritable.is_empty()
        && plan.count(Direction::Conflict) == 0
        && plan.duplicates.is_empty()
    {
        let _ = writeln!(
            out,
            "Nothing to import: this Mixxx has every change the repository holds ({} considered, {} skipped).",
            count(plan.tracks, "track", "tracks"),
            plan.skipped.len()
        );
        out.push_str(&render_import_pending(outcome));
        return out;
    }
    let _ = match (outcome.dry_run, outcome.to_import) {
        (_, 0) => writeln!(out, "Nothing importable into Mixxx."),
        (true, n) => writeln!(
            out,
            "Would import {} into Mixxx ({}).",
            count(n, "file", "files"),
            count(outcome.fields, "field change", "field changes")
        ),
        (false, _) => writeln!(
            out,
            "Imported {} into Mixxx ({}, {}).",
            count(outcome.imported, "file", "files"),
            count(outcome.tracks, "track", "tracks"),
            count(outcome.fields, "field change", "field changes")
        ),
    };
    if let Some(backup) = outcome.written.as_ref().and_then(|w| w.backup.as_deref()) {
        let _ = writeln!(
            out,
            "Backup of the Mixxx database first: {}",
            quote_path(backup)
        );
    }
    let row = |out: &mut String, label: &str, n: usize| {
        let _ = writeln!(out, "  {label:<40}{n:>8}");
    };
    if outcome.dry_run {
        row(&mut out, "files to import", outcome.to_import);
    } else {
        row(&mut out, "files imported", outcome.imported);
    }
    row(&mut out, "files unchanged", plan.unchanged);
    row(&mut out, "values not importable", outcome.unwritable.len());
    row(
        &mut out,
        "conflicts (left alone)",
        plan.count(Direction::Conflict),
    );
    row(
        &mut out,
        "outgoing changes (for sync)",
        plan.count(Direction::Outgoing),
    );
    row(&mut out, "tracks skipped", plan.skipped.len());
    skipped_lines(plan, &mut out);
    row(
        &mut out,
        "same content, different values",
        plan.duplicates.len(),
    );
    if let Some(written) = &outcome.written {
        row(&mut out, "crates created", written.crates_created.len());
    }
    let _ = writeln!(
        out,
        "  {:<40}{:>8.2}s",
        "elapsed",
        outcome.elapsed.as_secs_f64()
    );
    if detail.preview > 0 && plan.files(Direction::Incoming).next().is_some() {
        let _ = writeln!(
            out,
            "{}",
            match (outcome.dry_run, outcome.unwritable.is_empty()) {
                (true, _) => "Incoming (an import writes them into this Mixxx):",
                (false, true) => "Incoming (written into this Mixxx):",
                (false, false) =>
                    "Incoming (written into this Mixxx, but for those not importable):",
            }
        );
        out.push_str(&render_changes(plan, Direction::Incoming, detail.preview));
    }
    out.push_str(&render_unwritable(outcome, detail.preview));
    if detail.preview > 0 && plan.files(Direction::Conflict).next().is_some() {
        let _ = writeln!(out, "Conflicts (changed on both sides; left alone):");
        out.push_str(&render_changes(plan, Direction::Conflict, detail.preview));
    }
    if detail.timings {
        out.push_str(&render_timings(&outcome.timings));
    }
    out.push_str(&render_import_pending(outcome));
    out
}

/// File counts of an import (`files` in `import --json`).
#[derive(Serialize)]
pub struct ImportFileCounts {
    /// Files with a change to write into Mixxx / written.
    pub to_import: usize,
    pub imported: usize,
    pub unchanged: usize,
    /// Files with incoming changes (importable or not), with conflicts, with outgoing ones.
    pub incoming: usize,
    pub conflicts: usize,
    pub outgoing: usize,
    pub duplicates: usize,
}

/// The `--json` document of an import or its dry run.
#[derive(Serialize)]
pub struct ImportJson<'a> {
    pub dry_run: bool,
    pub tracks: usize,
    pub files: ImportFileCounts,
    /// Mixxx tracks and field changes written.
    pub tracks_written: usize,
    pub fields_written: usize,
    /// The backup taken before writing; `null` when nothing was written.
    pub backup: Option<&'a Path>,
    pub crates_created: &'a [String],
    #[serde(flatten)]
    pub three_way: ThreeWayJson<'a>,
    /// Repository values not written, with the reason.
    pub unwritable: &'a [Unwritable],
    pub skipped: SkipCounts,
    pub skipped_tracks: &'a [Skipped],
    pub elapsed_seconds: f64,
}

impl<'a> ImportJson<'a> {
    pub fn new(outcome: &'a ImportOutcome) -> ImportJson<'a> {
        let plan = &outcome.plan;
        let written = outcome.written.as_ref();
        ImportJson {
            dry_run: outcome.dry_run,
            tracks: plan.tracks,
            files: ImportFileCounts {
                to_import: outcome.to_import,
                imported: outcome.imported,
                unchanged: plan.unchanged,
                incoming: plan.files(Direction::Incoming).count(),
                conflicts: plan.files(Direction::Conflict).count(),
                outgoing: plan.outgoing_files().count(),
                duplicates: plan.duplicates.len(),
            },
            tracks_written: outcome.tracks,
            fields_written: if outcome.dry_run { 0 } else { outcome.fields },
            backup: written.and_then(|w| w.backup.as_deref()),
            crates_created: written.map_or(&[][..], |w| &w.crates_created[..]),
            three_way: ThreeWayJson::new(plan),
            unwritable: &outcome.unwritable,
            skipped: SkipCounts::new(plan),
            skipped_tracks: &plan.skipped,
            elapsed_seconds: outcome.elapsed.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn change(field: &str, before: &[&str], after: &[&str]) -> FieldChange {
        FieldChange::new(
            crate::sync::fields::FieldId::from_name(field).unwrap(),
            Direction::Outgoing,
            &values(after),
            &values(before),
            Some(&values(before)),
            values(after),
        )
    }

    #[test]
    fn streamed_json_is_the_same_text() {
        let doc = serde_json::json!({"a": [1, {"b": "ü\n"}], "c": [], "d": {}});
        let mut out = Vec::new();
        write_json(&mut out, &doc).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", to_json(&doc))
        );
    }

    #[test]
    fn change_descriptions() {
        assert_eq!(
            describe_change(&change("rating", &["3"], &["5"]), "rating"),
            "rating: 3 → 5"
        );
        assert_eq!(
            describe_change(&change("rating", &[], &["5"]), "rating"),
            "rating: 5"
        );
        assert_eq!(
            describe_change(&change("comment", &["x"], &[]), "comment"),
            "comment: removed"
        );
        assert_eq!(
            describe_change(
                &change("crate", &["Warmup", "Keep"], &["Festival", "Keep"]),
                "crate"
            ),
            "crate: +Festival −Warmup"
        );
        assert_eq!(
            describe_change(&change("rating", &["4", "5"], &["5"]), "rating"),
            "rating: 4, 5 → 5",
            "removing one of two values must not read as a negative rating"
        );
        assert_eq!(
            describe_change(
                &change("crate", &["+1", "Keep"], &["Keep", "Peak Time"]),
                "crate"
            ),
            "crate: +\"Peak Time\" −\"+1\"",
            "names with spaces or signs are quoted"
        );
        let conflict = FieldChange::new(
            crate::sync::fields::FieldId::Rating,
            Direction::Conflict,
            &values(&["4"]),
            &values(&["1", "4"]),
            Some(&[]),
            values(&["1", "4"]),
        );
        assert_eq!(
            describe_change(&conflict, "rating"),
            "rating: Mixxx 4 · repository 1, 4 · base (none)"
        );
        let long = "x".repeat(100);
        assert!(describe_change(&change("comment", &[], &[&long]), "comment").ends_with('…'));
    }
}
