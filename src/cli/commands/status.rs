//! `status`: what a sync would write now, and the recorded sync of every clone.

use std::io::Write;

use crate::annex::cache::Freshness;
use crate::annex::state;
use crate::cli::args::Cli;
use crate::cli::{Ui, resolve};
use crate::error::Result;
use crate::exit::ExitCode;
use crate::report::{self, StatusJson};
use crate::sync;
use crate::sync::plan::Selection;

pub fn run(cli: &Cli, json: bool, ui: &Ui) -> Result<ExitCode> {
    let inputs = resolve::inputs(cli, ui)?;
    let (plan, _) = sync::prepare(
        &inputs,
        &Selection::default(),
        Freshness::UseCache,
        &ui.progress(),
    )?;
    let records = state::read_all(&inputs.repo)?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = StatusJson::new(
            &inputs.repo.root,
            &inputs.repo.uuid,
            &inputs.mixxx_db,
            &plan,
            &records,
        );
        let _ = writeln!(out, "{}", report::to_json(&doc));
        return Ok(ExitCode::Success);
    }
    let _ = writeln!(
        out,
        "Repository:     {} (this clone: {})",
        inputs.repo.root.display(),
        inputs.repo.uuid
    );
    let _ = writeln!(out, "Mixxx database: {}", inputs.mixxx_db.display());
    if plan.changes.is_empty() {
        let _ = writeln!(
            out,
            "In sync: all {} files match Mixxx ({} tracks skipped, {} conflicts).",
            plan.unchanged,
            plan.skipped.len(),
            plan.conflicts.len()
        );
    } else {
        let _ = writeln!(
            out,
            "Mixxx differs from the repository: a sync would write {} files ({} unchanged, {} tracks skipped, {} conflicts):",
            plan.changes.len(),
            plan.unchanged,
            plan.skipped.len(),
            plan.conflicts.len()
        );
        let _ = write!(out, "{}", report::render_changes(&plan, ui.preview(false)));
    }
    let _ = write!(
        out,
        "{}",
        report::render_records(&records, &inputs.repo.uuid)
    );
    Ok(ExitCode::Success)
}
