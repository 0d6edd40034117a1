//! Turns flags, environment and the config file into the library's inputs. Every setting is
//! resolved the same way, here: flag > environment > file > default (the settings themselves
//! are declared once, in [`crate::config::SETTINGS`]).

use std::path::{Path, PathBuf};

use super::Ui;
use super::args::Cli;
use crate::annex::Repo;
use crate::annex::writer::Writer;
use crate::config::{self, Loaded};
pub use crate::config::{CONFIG, MIXXX_DB, MUSIC_ROOT, REPO, Setting, WRITER};
use crate::error::{Error, IoSubject, Result};
use crate::model::RepoPath;
use crate::sync::Inputs;
use crate::sync::plan::Selection;

/// A path setting's value without its default: the flag, else the environment, else the file.
/// `~` is expanded.
pub fn path(setting: &Setting, flag: Option<&Path>, file: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| setting.env_value())
        .or_else(|| file.map(Path::to_path_buf))
        .map(|p| config::expand_tilde(&p))
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir()
        .map_err(|e| Error::io_about(IoSubject::Arguments, "cannot read the current directory", e))
}

/// Resolves repository, database, music root and fields.
pub fn inputs(cli: &Cli, ui: &Ui) -> Result<Inputs> {
    inputs_and_config(cli, ui).map(|(inputs, _)| inputs)
}

/// [`inputs`], and the loaded config for the settings only some commands use.
pub fn inputs_and_config(cli: &Cli, ui: &Ui) -> Result<(Inputs, config::Config)> {
    let explicit = path(&CONFIG, cli.config.as_deref(), None);
    let Loaded {
        config,
        path: config_path,
        warnings,
    } = config::load(explicit.as_deref())?;
    for w in &warnings {
        ui.warn(w);
    }
    let config_path = config_path.unwrap_or_else(|| PathBuf::from("(defaults)"));
    let managed = config
        .managed_fields(&config_path)?
        .with_key_notation(config.sync.key_notation);

    let cwd = current_dir()?;
    let files = &config.paths;
    let repo_dir = path(&REPO, cli.repo.as_deref(), files.music_repo.as_deref())
        .map(|p| cwd.join(p))
        .unwrap_or_else(|| cwd.clone());
    let repo = Repo::discover(&repo_dir)?;

    let mixxx_db = path(
        &MIXXX_DB,
        cli.mixxx_db.as_deref(),
        files.mixxx_db.as_deref(),
    )
    .or_else(config::default_mixxx_db)
    // Absolute: the path is recorded in the sync record and names this clone's base, which a
    // path relative to wherever the command ran cannot.
    .map(|p| cwd.join(p))
    .ok_or_else(|| Error::MixxxDbMissing {
        path: PathBuf::from(MIXXX_DB.default),
    })?;
    let music_root = path(&MUSIC_ROOT, None, files.mixxx_music_root.as_deref());
    let writer = writer(cli, config.sync.writer)?;
    let inputs = Inputs {
        repo,
        mixxx_db,
        music_root,
        managed,
        writer,
    };
    Ok((inputs, config))
}

/// The process name that means Mixxx runs: environment, else file, else Mixxx's own.
pub fn mixxx_process(config: &config::Config) -> String {
    config::MIXXX_PROCESS
        .env
        .and_then(std::env::var_os)
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned())
        .or_else(|| config.mixxx.process_name.clone())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| crate::mixxx::running::DEFAULT_PROCESS_NAME.to_string())
}

/// `[paths] mixxx_backup_path` as written (environment > file > default), `{machine}` not yet
/// replaced. Not `~`-expanded: it is a path inside the repository.
pub fn backup_path_pattern(config: &config::Config) -> PathBuf {
    config::MIXXX_BACKUP_PATH
        .env_value()
        .or_else(|| config.paths.mixxx_backup_path.clone())
        .unwrap_or_else(|| PathBuf::from(crate::mixxx::backup::DEFAULT_REPO_PATH))
}

/// `--writer` > `MUSIC_COMMANDER_WRITER` > `[sync] writer` > direct.
fn writer(cli: &Cli, file: Option<Writer>) -> Result<Writer> {
    if let Some(flag) = cli.writer {
        return Ok(flag.into());
    }
    if let Some(env) = WRITER.env_value() {
        return match env.to_str() {
            Some("direct") => Ok(Writer::Direct),
            Some("git-annex") => Ok(Writer::GitAnnex),
            _ => Err(Error::Usage {
                message: format!(
                    "{}={} is not a writer",
                    WRITER.env.unwrap_or_default(),
                    crate::quote::for_terminal(&env.to_string_lossy())
                ),
                hint: Some("use \"direct\" or \"git-annex\"".into()),
            }),
        };
    }
    Ok(file.unwrap_or_default())
}

/// Turns `sync PATHS...` into repository paths. A path outside the repository is a usage
/// error naming it.
pub fn selection(repo: &Repo, paths: &[PathBuf]) -> Result<Selection> {
    let cwd = current_dir()?;
    let mut out = Vec::new();
    for arg in paths {
        let absolute = cwd.join(arg);
        let outside = || Error::Usage {
            message: format!(
                "{} is not inside the repository {}",
                arg.display(),
                repo.root.display()
            ),
            hint: Some("give files or folders inside the repository, or pass --repo DIR".into()),
        };
        let meta = std::fs::symlink_metadata(&absolute).map_err(|_| Error::Usage {
            message: format!("{}: no such file or folder", arg.display()),
            hint: None,
        })?;
        // Resolve the folder, never the file: a locked annexed file is a symlink into
        // .git/annex/objects.
        let resolved = if meta.is_dir() {
            absolute.canonicalize()
        } else {
            let parent = absolute.parent().unwrap_or(Path::new("/"));
            parent
                .canonicalize()
                .map(|p| p.join(absolute.file_name().unwrap_or_default()))
        }
        .map_err(|e| {
            Error::io_about(
                IoSubject::Arguments,
                format!("cannot resolve {}", arg.display()),
                e,
            )
        })?;
        let relative = resolved.strip_prefix(&repo.root).map_err(|_| outside())?;
        if relative.starts_with(".git") {
            return Err(outside());
        }
        use std::os::unix::ffi::OsStrExt;
        out.push(RepoPath::from_bytes(relative.as_os_str().as_bytes()));
    }
    Ok(Selection::new(out))
}
