//! `import`: the repository's curation (incoming changes) into this Mixxx's database.

use std::io::Write;

use crate::cli::args::{Cli, ImportArgs};
use crate::cli::{Ui, resolve};
use crate::error::Result;
use crate::exit::ExitCode;
use crate::mixxx::backup;
use crate::report::{self, ImportJson};
use crate::sync::import::{self, ImportOptions};

pub fn run(cli: &Cli, args: &ImportArgs, ui: &Ui) -> Result<ExitCode> {
    let (inputs, config) = resolve::inputs_and_config(cli, ui)?;
    let options = ImportOptions {
        dry_run: args.dry_run,
        selection: resolve::selection(&inputs.repo, &args.paths)?,
        prefer: args.prefer.into(),
        process_name: Some(resolve::mixxx_process(&config)),
        keep: backup::DEFAULT_KEEP,
    };
    let outcome = import::run(&inputs, &options, &ui.progress())?;
    for warning in outcome.plan.warnings.iter().chain(&outcome.warnings) {
        ui.warn(warning);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = report::write_json(&mut out, &ImportJson::new(&outcome));
    } else {
        let detail = report::Detail {
            quiet: ui.quiet,
            preview: ui.preview(false),
            list_all: false,
            timings: ui.verbose > 0,
        };
        let _ = write!(out, "{}", report::render_import(&outcome, &detail));
    }
    Ok(ExitCode::Success)
}
