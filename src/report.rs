//! What the user sees: progress on stderr while working, then a human table or one JSON
//! document on stdout.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::annex::state::SyncRecord;
use crate::model::RepoPath;
use crate::quote;
use crate::sync::Outcome;
use crate::sync::plan::{FieldChange, FileChange, Plan, SkipReason};

/// Files listed in a human plan before it says "… and N more" (all of them with `-v`).
pub const PLAN_PREVIEW: usize = 20;

/// Progress on stderr; draws nothing when stderr is not a terminal or with `--quiet`.
pub struct Progress {
    enabled: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            current: Mutex::new(None),
        }
    }

    fn replace(&self, bar: ProgressBar) -> ProgressBar {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.replace(bar.clone()) {
            old.finish_and_clear();
        }
        bar
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.enabled {
            // indicatif hides itself when stderr is not a terminal.
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// An indeterminate phase.
    pub fn spinner(&self, message: &'static str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.replace(bar)
    }

    /// A phase with `len` steps.
    pub fn bar(&self, message: &'static str, len: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message);
        self.replace(bar)
    }

    pub fn finish(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.take() {
            bar.finish_and_clear();
        }
    }
}

/// How a change of one field reads: `rating: 3 → 5`, `crate: +Festival −Warmup`,
/// `comment: removed`.
pub fn describe_change(change: &FieldChange, multi_valued: bool) -> String {
    let shown = |values: &[String]| {
        values
            .iter()
            .map(|v| shorten(v, 60))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let field = &change.field;
    if change.after.is_empty() {
        return format!("{field}: removed");
    }
    if multi_valued || change.before.len() > 1 || change.after.len() > 1 {
        let mut parts = Vec::new();
        for v in change.after.iter().filter(|v| !change.before.contains(v)) {
            parts.push(format!("+{}", shorten(v, 60)));
        }
        for v in change.before.iter().filter(|v| !change.after.contains(v)) {
            parts.push(format!("−{}", shorten(v, 60)));
        }
        return format!("{field}: {}", parts.join(" "));
    }
    if change.before.is_empty() {
        return format!("{field}: {}", shown(&change.after));
    }
    format!(
        "{field}: {} → {}",
        shown(&change.before),
        shown(&change.after)
    )
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

/// Paths quoted for the terminal, joined by `separator`.
fn shown_paths(paths: &[RepoPath], separator: &str) -> String {
    paths
        .iter()
        .map(|p| quote::bytes_for_terminal(p.as_bytes()))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The per-file plan, the first `limit` files.
pub fn render_changes(plan: &Plan, limit: usize, multi_valued_field: Option<&str>) -> String {
    let mut out = String::new();
    for change in plan.changes.iter().take(limit) {
        let _ = writeln!(out, "  {}", file_label(change));
        for c in &change.changes {
            let multi = multi_valued_field == Some(c.field.as_str());
            let _ = writeln!(out, "      {}", describe_change(c, multi));
        }
    }
    if plan.changes.len() > limit && limit > 0 {
        let _ = writeln!(
            out,
            "  … and {} more files (use -v or --json to list all)",
            plan.changes.len() - limit
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
        row(&mut out, "files to write", plan.changes.len());
    } else {
        row(&mut out, "files written", outcome.written);
    }
    row(&mut out, "files unchanged", plan.unchanged);
    row(&mut out, "tracks skipped", plan.skipped.len());
    skipped_lines(plan, &mut out);
    row(
        &mut out,
        "conflicts (same file, different values)",
        plan.conflicts.len(),
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
    for c in &plan.conflicts {
        let _ = writeln!(
            out,
            "conflict: {} share one file content but differ in {} — not written",
            shown_paths(&c.paths, ", "),
            c.fields.join(", ")
        );
    }
    for f in outcome.failed.iter().take(PLAN_PREVIEW) {
        let _ = writeln!(
            out,
            "failed: {}: {}",
            shown_paths(&f.paths, ", "),
            quote::for_terminal(&f.reason)
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
    /// The git-annex name of the crate field (shown as `+added −removed`).
    pub multi_valued_field: Option<String>,
}

impl Default for Detail {
    fn default() -> Self {
        Detail {
            quiet: false,
            preview: PLAN_PREVIEW,
            list_all: false,
            timings: false,
            multi_valued_field: None,
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
    if plan.changes.is_empty() && plan.conflicts.is_empty() && !detail.list_all {
        let _ = writeln!(
            out,
            "Nothing to sync: {} tracks already match ({} skipped).",
            plan.tracks - plan.skipped.len(),
            plan.skipped.len()
        );
        if detail.timings {
            out.push_str(&render_timings(&outcome.timings));
        }
        return out;
    }
    let (verb, n) = if outcome.dry_run {
        ("Would write", plan.changes.len())
    } else {
        ("Wrote", outcome.written)
    };
    // Counts first: with thousands of files the list is the part to skim, not to scroll past.
    let _ = writeln!(out, "{verb} {n} files.");
    out.push_str(&render_summary(outcome));
    if detail.preview > 0 && !plan.changes.is_empty() {
        let _ = writeln!(out, "Changes:");
        out.push_str(&render_changes(
            plan,
            detail.preview,
            detail.multi_valued_field.as_deref(),
        ));
    }
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
    // SAFETY: getrusage only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    usage.ru_maxrss as f64 / 1024.0
}

fn change_json(change: &FileChange) -> Value {
    let mut set = serde_json::Map::new();
    let mut removed = Vec::new();
    let mut before = serde_json::Map::new();
    for c in &change.changes {
        if c.after.is_empty() {
            removed.push(Value::from(c.field.clone()));
        } else {
            set.insert(c.field.clone(), json!(c.after));
        }
        before.insert(c.field.clone(), json!(c.before));
    }
    json!({
        "paths": change.paths,
        "key": change.key,
        "set": set,
        "removed": removed,
        "before": before,
    })
}

/// The `--json` document of a sync or dry run.
pub fn outcome_json(outcome: &Outcome) -> Value {
    let plan = &outcome.plan;
    let mut skipped = serde_json::Map::new();
    for reason in SkipReason::ALL {
        skipped.insert(
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            json!(plan.skipped_count(reason)),
        );
    }
    json!({
        "dry_run": outcome.dry_run,
        "interrupted": outcome.interrupted,
        "tracks": plan.tracks,
        "files": {
            "to_write": plan.changes.len(),
            "written": outcome.written,
            "unchanged": plan.unchanged,
            "failed": outcome.failed.len(),
            "not_written": outcome.not_written,
            "conflicts": plan.conflicts.len(),
        },
        "skipped": skipped,
        "skipped_tracks": plan.skipped,
        "commits": outcome.commits,
        "elapsed_seconds": outcome.elapsed.as_secs_f64(),
        "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "conflicts": plan.conflicts,
        "failed": outcome.failed,
        "timings": outcome.timings.iter().map(|(n, d)| json!({"phase": n, "seconds": d.as_secs_f64()})).collect::<Vec<_>>(),
        "peak_memory_mib": peak_rss_mib(),
    })
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
            "  {who}{here}\n      {}  {} tracks, {} files changed, music-commander {}, from {}",
            quote::for_terminal(&r.time),
            r.tracks,
            r.written,
            quote::for_terminal(&r.tool_version),
            quote::for_terminal(&r.mixxx_db)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(field: &str, before: &[&str], after: &[&str]) -> FieldChange {
        FieldChange {
            field: field.into(),
            before: before.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn change_descriptions() {
        assert_eq!(
            describe_change(&change("rating", &["3"], &["5"]), false),
            "rating: 3 → 5"
        );
        assert_eq!(
            describe_change(&change("rating", &[], &["5"]), false),
            "rating: 5"
        );
        assert_eq!(
            describe_change(&change("comment", &["x"], &[]), false),
            "comment: removed"
        );
        assert_eq!(
            describe_change(
                &change("crate", &["Warmup", "Keep"], &["Festival", "Keep"]),
                true
            ),
            "crate: +Festival −Warmup"
        );
        assert_eq!(
            describe_change(&change("rating", &["4", "5"], &["5"]), false),
            "rating: −4"
        );
        let long = "x".repeat(100);
        assert!(describe_change(&change("comment", &[], &[&long]), false).ends_with('…'));
    }
}
