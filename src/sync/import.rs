//! `import`: the repository's curation into this machine's Mixxx. The plan is the sync's
//! (three-way, per file and field); import applies its **incoming** changes to the Mixxx
//! database through [`crate::mixxx::write`], and with `--prefer repo` the conflicts too, then
//! moves the base forward for what it wrote, so the next `sync` sees both sides agree.
//!
//! Outgoing changes are `sync`'s job and are never touched here. With `--prefer mixxx` a
//! conflict keeps this Mixxx's value, which is already in this Mixxx: import has nothing to
//! write for it and leaves it (the next `sync --prefer mixxx` writes it to the repository).
//!
//! A value is written only when Mixxx would give it back unchanged: each field's inverse
//! codec makes the column values, and the forward codec must read them back as the
//! repository's value. What fails that (two ratings, `rating=7`, `color=red`, a crate name
//! Mixxx would show differently) is not written and is listed with its reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::annex::cache::{Encoder, Freshness};
use crate::annex::lock;
use crate::error::Result;
use crate::mixxx::backup::LocalBackups;
use crate::mixxx::write::{
    self, CellEdit, CrateEdit, CueAt, CueEdit, CueValues, Edits, Guard, Written,
};
use crate::mixxx::{self, MixxxDb, Raw};
use crate::model::{AnnexKey, RepoPath};
use crate::sync::base::{Agreed, BaseStore};
use crate::sync::beatgrid;
use crate::sync::cues::{self, CueSlot};
use crate::sync::fields::{self, Codec, FieldId, ManagedFields, Source, Unrepresentable};
use crate::sync::merge::{self, Prefer};
use crate::sync::plan::{Direction, FieldChange, FileChange, Plan, Selection, Values};
use crate::sync::{Inputs, Progress, Reading, Timings, read_and_plan};

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub selection: Selection,
    pub prefer: Prefer,
    /// The process name that means Mixxx runs; `None` only for a database no Mixxx has open
    /// (the demo's).
    pub process_name: Option<String>,
    /// Local backups to keep.
    pub keep: usize,
}

/// A repository value import does not write, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unwritable {
    pub paths: Vec<RepoPath>,
    pub key: AnnexKey,
    /// The git-annex field name.
    pub field: String,
    /// The repository's values for the field (for crates: the one crate).
    pub values: Vec<String>,
    pub reason: String,
}

/// Everything an import did, for the report.
#[derive(Debug)]
pub struct ImportOutcome {
    pub plan: Plan,
    pub dry_run: bool,
    /// Files with at least one field change to write into Mixxx.
    pub to_import: usize,
    /// Of those, the files written (all of them, or none on a dry run).
    pub imported: usize,
    /// Mixxx tracks written (several per file when files share a content).
    pub tracks: usize,
    /// Field changes written (per file, not per track).
    pub fields: usize,
    pub unwritable: Vec<Unwritable>,
    /// What the database write did (backup, created crates); `None` when nothing was written.
    pub written: Option<Written>,
    pub elapsed: Duration,
    pub timings: Timings,
    pub warnings: Vec<String>,
}

/// One file's part of the import: what goes into the database and what Mixxx will hold
/// afterwards, per field.
struct FileImport {
    index: usize,
    cells: Vec<CellEdit>,
    crates: Vec<CrateEdit>,
    cues: Vec<CueEdit>,
    /// (field, this Mixxx's values once written).
    after: Vec<(FieldId, Vec<String>)>,
}

/// Plans and, unless `dry_run`, writes the import.
pub fn run(
    inputs: &Inputs,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportOutcome> {
    let started = Instant::now();
    // Refuse early, before minutes of reading, and again right before writing.
    if !options.dry_run {
        write::refuse_if_running(&inputs.mixxx_db, options.process_name.as_deref())?;
    }
    // The base is shared with `sync`: one writing run per repository.
    let _lock = match options.dry_run {
        true => None,
        false => Some(lock::acquire(&inputs.repo, "import", &|holder| {
            say_err!("waiting for {holder} to finish…")
        })?),
    };
    // With `--prefer mixxx` a conflict keeps this Mixxx's value: nothing to import, and the
    // plan keeps it a conflict (to report) rather than turning it into an outgoing change.
    let plan_prefer = match options.prefer {
        Prefer::Repo => Prefer::Repo,
        Prefer::Mixxx | Prefer::Neither => Prefer::Neither,
    };
    let how = Reading {
        selection: &options.selection,
        freshness: Freshness::UseCache,
        prefer: plan_prefer,
        settling: !options.dry_run,
        keep_tracks: false,
    };
    let (plan, read, mut timings) = read_and_plan(inputs, &how, progress, None)?;

    let write_started = Instant::now();
    let analysis = analysis(inputs, &plan)?;
    let mut unwritable = Vec::new();
    let imports: Vec<FileImport> = plan
        .changes
        .iter()
        .enumerate()
        .filter_map(|(index, file)| {
            prepare_file(index, file, &plan.managed, &analysis, &mut unwritable)
        })
        .collect();
    let era_warning = era_warning(inputs, &plan, &imports)?;
    let mut outcome = ImportOutcome {
        to_import: imports.len(),
        imported: 0,
        tracks: 0,
        fields: imports.iter().map(|f| f.after.len()).sum(),
        unwritable,
        written: None,
        dry_run: options.dry_run,
        elapsed: Duration::ZERO,
        timings: Vec::new(),
        warnings: era_warning.into_iter().collect(),
        plan,
    };
    if options.dry_run {
        outcome.timings = timings;
        outcome.elapsed = started.elapsed();
        return Ok(outcome);
    }

    if !imports.is_empty() {
        let mut edits = Edits::default();
        for file in &imports {
            edits.cells.extend(file.cells.iter().cloned());
            edits.crates.extend(file.crates.iter().cloned());
            edits.cues.extend(file.cues.iter().cloned());
        }
        let backups = LocalBackups::new(&inputs.repo.common_dir, &inputs.mixxx_db);
        let guard = Guard {
            process_name: options.process_name.as_deref(),
            backups: &backups,
            keep: options.keep,
            reason: "import",
            busy_timeout: mixxx::DEFAULT_BUSY_TIMEOUT,
            crate_key: fields::clean_text,
        };
        let written = write::apply(&inputs.mixxx_db, &edits, &guard)?;
        outcome.imported = imports.len();
        outcome.tracks = imports
            .iter()
            .map(|f| outcome.plan.changes[f.index].track_ids.len())
            .sum();
        for column in &written.missing_columns {
            outcome.warnings.push(format!(
                "this Mixxx database has no {column} column; its values were not imported"
            ));
        }
        outcome.written = Some(written);
    }
    timings.push(("write Mixxx", write_started.elapsed()));
    // Only after the database committed: a base ahead of this Mixxx would make an incoming
    // change look like this machine's edit.
    if let Err(e) = settle_base(read.base.get(), &outcome.plan, &imports) {
        outcome.warnings.push(format!(
            "could not save this clone's sync base ({e}); nothing is lost, the next sync compares without it where it must"
        ));
    }
    outcome.timings = timings;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// What the BPM and key rule needs: which tracks have a beat grid or a key analysis, and
/// the schema revision; for cues, each track's sample rate (the seconds a value shows).
/// Read only when an incoming change touches those fields.
#[derive(Default)]
struct Analysis {
    beats: std::collections::HashSet<i64>,
    keys: std::collections::HashSet<i64>,
    revision: Option<u32>,
    samplerates: HashMap<i64, Option<i64>>,
}

fn analysis(inputs: &Inputs, plan: &Plan) -> Result<Analysis> {
    let incoming = || {
        plan.changes
            .iter()
            .flat_map(|f| &f.changes)
            .filter(|c| c.direction == Direction::Incoming)
    };
    let analysed = incoming().any(|c| matches!(c.field, FieldId::Bpm | FieldId::Key));
    let cue = incoming().any(|c| c.field.is_cue());
    if !analysed && !cue {
        return Ok(Analysis::default());
    }
    let db = MixxxDb::open(&inputs.mixxx_db)?;
    let mut out = Analysis {
        revision: db.schema().version,
        ..Analysis::default()
    };
    if analysed {
        out.beats = db.tracks_with_data(&["beats", "beats_version"])?;
        out.keys = db.tracks_with_data(&["keys", "keys_version"])?;
    }
    if cue {
        let library = db.read_library(&mixxx::Request {
            columns: vec![fields::SAMPLERATE],
            ..mixxx::Request::default()
        })?;
        let position = library.position(fields::SAMPLERATE.name);
        out.samplerates = library
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, library.value(i, position).as_integer()))
            .collect();
    }
    Ok(out)
}

/// The warning for cue positions measured by another Mixxx line going into lossy files, whose
/// decoders Mixxx changed between major versions (the same bytes may decode to other sample
/// positions), listing the files. The line comes from `cues-mixxx`, which `sync` sets beside
/// every outgoing cue change.
fn era_warning(inputs: &Inputs, plan: &Plan, imports: &[FileImport]) -> Result<Option<String>> {
    let here = cues::era(plan.managed.options.mixxx_revision);
    let lossy = |path: &RepoPath| {
        let name = path.to_string_lossy();
        name.rsplit_once('.')
            .is_some_and(|(_, ext)| cues::LOSSY.contains(&ext.to_ascii_lowercase().as_str()))
    };
    let sets_grid = |f: &FileImport| {
        f.after
            .iter()
            .any(|(field, after)| *field == FieldId::BeatGrid && !after.is_empty())
    };
    let sets_cues = |f: &FileImport| f.cues.iter().any(|c| c.row.is_some());
    // (file, it gets cues, it gets a grid)
    let candidates: Vec<(&FileChange, bool, bool)> = imports
        .iter()
        .filter(|f| sets_cues(f) || sets_grid(f))
        .map(|f| (&plan.changes[f.index], sets_cues(f), sets_grid(f)))
        .filter(|(f, _, _)| f.paths.iter().any(lossy))
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let keys: Vec<AnnexKey> = candidates.iter().map(|(f, _, _)| f.key.clone()).collect();
    let current = crate::annex::snapshot::read_with(&inputs.repo, &keys, Freshness::UseCache)?;
    let mut listed: Vec<String> = Vec::new();
    let mut eras: Vec<&str> = Vec::new();
    let (mut with_cues, mut with_grids) = (false, false);
    for (file, cues, grid) in candidates {
        let Some(era) = current
            .get(&file.key)
            .and_then(|set| set.get(cues::ERA_FIELD))
            .and_then(|v| v.iter().find(|e| e.as_str() != here))
        else {
            continue;
        };
        if !eras.contains(&era.as_str()) {
            eras.push(era);
        }
        with_cues |= cues;
        with_grids |= grid;
        listed.extend(
            file.paths
                .iter()
                .map(|p| crate::quote::for_terminal(&p.to_string_lossy()).into_owned()),
        );
    }
    if listed.is_empty() {
        return Ok(None);
    }
    let (what, check) = match (with_cues, with_grids) {
        (true, false) => ("cue positions", "these cues"),
        (true, true) => ("cue positions or beat grids", "these cues and grids"),
        (false, _) => ("beat grids", "these grids"),
    };
    Ok(Some(format!(
        "{} lossy file(s) get {what} measured by Mixxx {} and this Mixxx is {here}: Mixxx changed its decoders between major versions, so check {check} once: {}",
        listed.len(),
        eras.join(", "),
        listed.join(", ")
    )))
}

/// Mixxx 2.4 and later (schema revision 39 on) ignore the `bpm` column of a track without a
/// beat grid.
const BPM_COLUMN_IGNORED_FROM: u32 = 39;

/// Why the analysed field `field` of these tracks is not written, if it is not. Mixxx loads
/// BPM and key from its analysis (the `beats` and `keys` blobs) when a track has one, and
/// rewrites the columns from it on its next save, so a column written beside an analysis
/// would not last; and from 2.4 on the `bpm` column alone is not read at all. Without an
/// analysis, Mixxx parses the key text as a key the user set and builds a temporary beat
/// grid from the `bpm` column (2.3), which its analyser replaces when it analyses the track.
fn analysed_reason(field: FieldId, tracks: &[i64], analysis: &Analysis) -> Option<String> {
    match field {
        FieldId::Bpm if analysis.revision.unwrap_or(0) >= BPM_COLUMN_IGNORED_FROM => Some(
            format!(
                "this Mixxx (schema revision {}) takes the BPM only from its beat grid, not from the column",
                analysis.revision.unwrap_or(0)
            ),
        ),
        FieldId::Bpm if tracks.iter().any(|t| analysis.beats.contains(t)) => Some(
            "Mixxx has a beat grid for this track and takes the BPM from it, not from the column"
                .to_string(),
        ),
        FieldId::Key if tracks.iter().any(|t| analysis.keys.contains(t)) => Some(
            "Mixxx has a key analysis for this track and takes the key from it, not from the column"
                .to_string(),
        ),
        _ => None,
    }
}

/// The edits for one file's incoming changes, or `None` when it has nothing to write. What
/// cannot be written goes to `unwritable`.
fn prepare_file(
    index: usize,
    file: &FileChange,
    managed: &ManagedFields,
    analysis: &Analysis,
    unwritable: &mut Vec<Unwritable>,
) -> Option<FileImport> {
    let mut out = FileImport {
        index,
        cells: Vec::new(),
        crates: Vec::new(),
        cues: Vec::new(),
        after: Vec::new(),
    };
    // A beat grid this import writes sets the BPM Mixxx shows (it takes the tempo from the
    // grid on load and writes it into `bpm` on save), so the `bpm` column goes with it, and an
    // incoming `bpm` must agree with it.
    let grid_bpm: Option<f64> = file
        .changes
        .iter()
        .find(|c| c.field == FieldId::BeatGrid && c.direction == Direction::Incoming)
        .and_then(|c| c.after().only())
        .and_then(|one| beatgrid::decode(one).ok())
        .and_then(|g| g.bpm());
    // Hot-cue slots this import sets (true) or clears (false), for the `hotcues` index.
    let mut hot_written: Vec<(u8, bool)> = Vec::new();
    let mut index_change: Option<&FieldChange> = None;
    let mut refuse = |c: &FieldChange, values: Vec<String>, reason: String| {
        unwritable.push(Unwritable {
            paths: file.paths.clone(),
            key: file.key.clone(),
            field: managed.annex_name(c.field).to_string(),
            values,
            reason,
        })
    };
    for c in file
        .changes
        .iter()
        .filter(|c| c.direction == Direction::Incoming)
    {
        match (c.field.def().codec, c.field.def().source) {
            (Codec::Cue(CueSlot::Index), _) => index_change = Some(c),
            (Codec::Cue(slot), _) => {
                let value = match c.after().at_most_one() {
                    Ok(value) => value,
                    Err(several) => {
                        refuse(
                            c,
                            c.after().to_vec(),
                            Unrepresentable::Several(several).to_string(),
                        );
                        continue;
                    }
                };
                let at = match slot.fixed_type() {
                    Some(kind) => CueAt::Type(kind),
                    None => CueAt::HotCue(slot.hotcue()),
                };
                let row = match value {
                    None => None,
                    Some(v) => {
                        let cue = match cues::decode(slot, v) {
                            Ok(cue) => cue,
                            Err(why) => {
                                refuse(c, c.after().to_vec(), why.to_string());
                                continue;
                            }
                        };
                        // The value must be what this Mixxx gives back, seconds included.
                        let back = file.track_ids.iter().find_map(|t| {
                            let samplerate = analysis.samplerates.get(t).copied().flatten();
                            let back = cues::encode(slot, &cue, samplerate);
                            (back.as_deref() != Some(v)).then_some((back, samplerate))
                        });
                        if let Some((back, samplerate)) = back {
                            let reason = match back {
                                Some(b) => format!(
                                    "Mixxx would show it as {b:?} (sample rate {})",
                                    samplerate.map_or("unknown".to_string(), |s| s.to_string())
                                ),
                                None => "Mixxx would show no value".to_string(),
                            };
                            refuse(c, c.after().to_vec(), reason);
                            continue;
                        }
                        Some(CueValues {
                            kind: cue.kind,
                            position: cue.position,
                            length: cue.length,
                            hotcue: slot.hotcue(),
                            label: cue.label,
                            color: cue.color,
                        })
                    }
                };
                for &track in &file.track_ids {
                    if slot == CueSlot::Main {
                        // Mixxx keeps the main cue in `library.cuepoint` too (0 for none).
                        out.cells.push(CellEdit {
                            track,
                            column: "cuepoint",
                            value: mixxx::Value::Real(row.as_ref().map_or(0.0, |r| r.position)),
                        });
                    }
                    out.cues.push(CueEdit {
                        track,
                        at,
                        row: row.clone(),
                    });
                }
                if let CueSlot::Hot(n) = slot {
                    hot_written.push((n, row.is_some()));
                }
                out.after.push((c.field, c.after().to_vec()));
            }
            (Codec::Single { forward, inverse }, Source::Columns(columns)) => {
                let value = match c.after().at_most_one() {
                    Ok(value) => value,
                    Err(several) => {
                        refuse(
                            c,
                            c.after().to_vec(),
                            Unrepresentable::Several(several).to_string(),
                        );
                        continue;
                    }
                };
                let values = match inverse(value, &managed.options) {
                    Ok(values) => values,
                    Err(why) => {
                        refuse(c, c.after().to_vec(), why.to_string());
                        continue;
                    }
                };
                let raw: Vec<Raw<'_>> = values.iter().map(mixxx::Value::as_raw).collect();
                let back = forward(&raw, &managed.options);
                if back.as_deref() != value {
                    let reason = match &back {
                        Some(b) => format!("Mixxx would show it as {b:?}"),
                        None => "Mixxx would show no value".to_string(),
                    };
                    refuse(c, c.after().to_vec(), reason);
                    continue;
                }
                if let (FieldId::Bpm, Some(grid)) = (c.field, grid_bpm) {
                    // The grid's cell below writes the column.
                    if fields::bpm(Some(grid)).as_deref() == value {
                        out.after.push((c.field, c.after().to_vec()));
                    } else {
                        refuse(
                            c,
                            c.after().to_vec(),
                            format!(
                                "the beat grid imported with it sets the BPM to {}",
                                fields::bpm(Some(grid)).unwrap_or_default()
                            ),
                        );
                    }
                    continue;
                }
                if let Some(reason) = analysed_reason(c.field, &file.track_ids, analysis) {
                    refuse(c, c.after().to_vec(), reason);
                    continue;
                }
                for &track in &file.track_ids {
                    for (column, value) in columns.iter().zip(&values) {
                        out.cells.push(CellEdit {
                            track,
                            column: column.name,
                            value: value.clone(),
                        });
                    }
                    if let (FieldId::BeatGrid, Some(bpm)) = (c.field, grid_bpm) {
                        out.cells.push(CellEdit {
                            track,
                            column: "bpm",
                            value: mixxx::Value::Real(bpm),
                        });
                    }
                }
                out.after.push((c.field, c.after().to_vec()));
            }
            (Codec::Crates, _) | (_, Source::Crates | Source::Cues) => {
                // `before` is this Mixxx's crates, `after` what it should hold.
                let mut after = c.before().to_vec();
                for name in c.added() {
                    if fields::clean_text(name).as_deref() != Some(name) {
                        refuse(
                            c,
                            vec![name.to_string()],
                            "not a crate name Mixxx would show the same way (blank, control characters or extra spaces)".to_string(),
                        );
                        continue;
                    }
                    after.push(name.to_string());
                    for &track in &file.track_ids {
                        out.crates.push(CrateEdit {
                            track,
                            name: name.to_string(),
                            member: true,
                        });
                    }
                }
                for name in c.removed() {
                    after.retain(|v| v != name);
                    for &track in &file.track_ids {
                        out.crates.push(CrateEdit {
                            track,
                            name: name.to_string(),
                            member: false,
                        });
                    }
                }
                after.sort();
                after.dedup();
                if c.before() != after {
                    out.after.push((c.field, after));
                }
            }
        }
    }
    if let Some(c) = index_change {
        // Nothing to write: the index follows the slots Mixxx holds once they are written.
        let mut after = c.before().to_vec();
        for (n, set) in hot_written {
            let n = n.to_string();
            after.retain(|v| *v != n);
            if set {
                after.push(n);
            }
        }
        after.sort();
        after.dedup();
        if c.before() != after {
            out.after.push((c.field, after));
        }
    }
    (!out.after.is_empty()).then_some(out)
}

/// Moves the base forward: files that match (as `sync` does), and for every file with
/// changes, what both sides hold once this import's writes are in.
fn settle_base(store: &BaseStore, plan: &Plan, imports: &[FileImport]) -> std::io::Result<()> {
    let mut updates: HashMap<AnnexKey, Agreed> = plan.base_updates.iter().cloned().collect();
    let by_index: HashMap<usize, &FileImport> = imports.iter().map(|f| (f.index, f)).collect();
    let mut scratch = Encoder::default();
    for (index, file) in plan.changes.iter().enumerate() {
        let mut settled = plan.settled(file, false);
        if let Some(import) = by_index.get(&index) {
            for (field, mixxx_after) in &import.after {
                let Some(change) = file
                    .changes
                    .iter()
                    .find(|c| c.field == *field && c.direction == Direction::Incoming)
                else {
                    continue;
                };
                let name = plan.managed.annex_name(*field);
                let base = change.base().map(Values::to_vec);
                if let Some(agreed) = merge::settle(
                    field.arity(),
                    mixxx_after,
                    &change.repo().to_vec(),
                    base.as_deref(),
                ) {
                    settled.set(name, agreed);
                }
            }
        }
        if !store.holds(&file.key, &settled, &mut scratch) {
            updates.insert(file.key.clone(), settled);
        }
    }
    if updates.is_empty() {
        return Ok(());
    }
    store.write(&updates, |_| true)
}
