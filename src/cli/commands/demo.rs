//! `demo`: build the sample library and sync it (the work is in [`crate::demo`]).

use std::path::Path;

use crate::cli::Ui;
use crate::error::Result;
use crate::exit::ExitCode;

pub fn run(dir: Option<&Path>, ui: &Ui) -> Result<ExitCode> {
    crate::demo::run(dir, ui.quiet)
}
