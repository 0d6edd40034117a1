//! `init-config`: write the commented config template.

use std::path::Path;

use crate::cli::Ui;
use crate::config;
use crate::error::{Error, IoSubject, Result};
use crate::exit::ExitCode;

pub fn run(output: Option<&Path>, force: bool, ui: &Ui) -> Result<ExitCode> {
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => config::default_path().ok_or_else(|| {
            Error::usage("cannot find the config directory (HOME is not set); pass -o FILE")
        })?,
    };
    if path.exists() && !force {
        return Err(Error::Usage {
            message: format!("{} already exists", path.display()),
            hint: Some("pass --force to overwrite it".into()),
        });
    }
    let io = |what: String, e| Error::io_about(IoSubject::Config, what, e);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io(format!("cannot create {}", parent.display()), e))?;
    }
    std::fs::write(&path, config::template())
        .map_err(|e| io(format!("cannot write {}", path.display()), e))?;
    if !ui.quiet {
        say!("Wrote {}", path.display());
    }
    Ok(ExitCode::Success)
}
