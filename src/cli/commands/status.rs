//! `status`: what a sync would write now, and the recorded sync of every clone.

use std::io::Write;

use crate::annex::cache::Freshness;
use crate::annex::state;
use crate::cli::args::Cli;
use crate::cli::{Ui, resolve};
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::report::{self, StatusJson};
use crate::sync;
use crate::sync::plan::{Direction, Plan, Selection};

pub fn run(cli: &Cli, json: bool, ui: &Ui) -> Result<ExitCode> {
    let inputs = resolve::inputs(cli, ui)?;
    // Without this Mixxx database (a laptop whose Mixxx has not run yet, a database on an
    // unmounted disk) the clones' records are still worth showing: say the database is
    // missing and exit 0, since nothing is wrong with the repository.
    let plan = match sync::prepare(
        &inputs,
        &Selection::default(),
        Freshness::UseCache,
        Default::default(),
        &ui.progress(),
    ) {
        Ok((plan, _)) => Some(plan),
        Err(Error::MixxxDbMissing { .. }) => None,
        Err(e) => return Err(e),
    };
    for warning in plan.iter().flat_map(|p| &p.warnings) {
        ui.warn(warning);
    }
    let records = state::read_all(&inputs.repo)?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = StatusJson::new(
            &inputs.repo.root,
            &inputs.repo.uuid,
            &inputs.mixxx_db,
            plan.as_ref(),
            &records,
        );
        let _ = report::write_json(&mut out, &doc);
        return Ok(ExitCode::Success);
    }
    let _ = writeln!(
        out,
        "Repository:     {} (this clone: {})",
        report::quote_path(&inputs.repo.root),
        inputs.repo.uuid
    );
    let _ = writeln!(
        out,
        "Mixxx database: {}",
        report::quote_path(&inputs.mixxx_db)
    );
    match &plan {
        None => {
            let _ = writeln!(
                out,
                "Mixxx database not found: nothing to compare; the clones' records follow."
            );
        }
        Some(plan) => render_plan_summary(&mut out, plan, ui),
    }
    let _ = write!(
        out,
        "{}",
        report::render_records(&records, &inputs.repo.uuid)
    );
    Ok(ExitCode::Success)
}

fn render_plan_summary(out: &mut impl Write, plan: &Plan, ui: &Ui) {
    if plan.changes.is_empty() {
        let _ = writeln!(
            out,
            "In sync: all {} match Mixxx ({} skipped, {} with different values for one content).",
            report::count(plan.unchanged, "file", "files"),
            report::count(plan.skipped.len(), "track", "tracks"),
            plan.duplicates.len()
        );
    } else {
        let counts = [
            (Direction::Outgoing, "outgoing (a sync writes them)"),
            (Direction::Incoming, "incoming (not in this Mixxx yet)"),
            (Direction::Conflict, "in conflict (changed on both sides)"),
        ]
        .into_iter()
        .filter(|&(d, _)| plan.count(d) > 0)
        .map(|(d, what)| {
            format!(
                "{} {what}",
                report::count(plan.count(d), "change", "changes")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
        let _ = writeln!(
            out,
            "Mixxx and the repository differ: {counts}; {} unchanged, {} skipped.",
            report::count(plan.unchanged, "file", "files"),
            report::count(plan.skipped.len(), "track", "tracks"),
        );
        let _ = write!(out, "{}", report::render_plan(plan, ui.preview(false)));
    }
}
