//! `backup` (alias `mixxx backup`): a consistent snapshot of the Mixxx database, annexed at
//! `[paths] mixxx_backup_path` and committed alone, so every backup is a new version of one
//! file and its history is git's.

use std::io::Write;

use crate::annex::{backups, lock, state};
use crate::cli::args::{BackupArgs, Cli};
use crate::cli::{Ui, resolve};
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::mixxx::backup::snapshot_over;
use crate::quote::for_terminal;
use crate::report;

pub fn run(cli: &Cli, args: &BackupArgs, ui: &Ui) -> Result<ExitCode> {
    let (inputs, config) = resolve::inputs_and_config(cli, ui)?;
    let repo = &inputs.repo;
    if !inputs.mixxx_db.is_file() {
        return Err(Error::MixxxDbMissing {
            path: inputs.mixxx_db.clone(),
        });
    }
    let pattern = repo_pattern(&config)?;
    let machine = backups::machine_name(repo)?;
    let path = pattern.path_for(&machine);
    if backups::blocked(&repo.root, &path) {
        return Err(Error::usage(format!(
            "cannot back up to {}: it is a folder",
            for_terminal(&path)
        )));
    }
    // git-annex serialises its own writes; the lock keeps a sync, import or restore of this
    // clone from interleaving with the commit.
    let _lock = lock::acquire(repo, "backup", &|holder| {
        say_err!("waiting for {holder} to finish…")
    })?;
    // The snapshot replaces the work-tree file by rename: the previous version's content (a
    // symlink's target, or an unlocked file's hard link) stays in the annex untouched.
    snapshot_over(&inputs.mixxx_db, &repo.root.join(&path))?;
    let time = state::now_rfc3339();
    let message = args
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("Mixxx backup: {machine}, {time}"));
    let committed = backups::commit(repo, &path, &message)?;
    let short = &committed.commit[..committed.commit.len().min(7)];
    let mut out = std::io::stdout().lock();
    if committed.new {
        let _ = writeln!(
            out,
            "Backed up {} to {} (commit {short}).",
            report::quote_path(&inputs.mixxx_db),
            for_terminal(&path)
        );
    } else {
        let _ = writeln!(
            out,
            "{} is unchanged since the backup in commit {short} ({}); nothing committed.",
            report::quote_path(&inputs.mixxx_db),
            for_terminal(&path)
        );
    }
    if !ui.quiet {
        let _ = writeln!(
            out,
            "Restore it with `music-commander restore {short}:{}`; other clones get it with `git annex sync`.",
            for_terminal(&path)
        );
    }
    Ok(ExitCode::Success)
}

/// `[paths] mixxx_backup_path`, checked.
pub fn repo_pattern(config: &crate::config::Config) -> Result<backups::Pattern> {
    let text = resolve::backup_path_pattern(config);
    let text = text.to_string_lossy();
    backups::Pattern::parse(&text).map_err(|message| Error::Usage {
        message: format!("[paths] mixxx_backup_path: {message}"),
        hint: Some(format!(
            "use a path inside the repository, e.g. {:?}",
            crate::mixxx::backup::DEFAULT_REPO_PATH
        )),
    })
}
