//! `restore [--list] [BACKUP]`: write a backup back over the Mixxx database.
//!
//! Backups come from two places: the local ones taken automatically before a write
//! (`mixxx::backup::LocalBackups`, this clone's `.git/music-commander/mixxx-backups/`) and
//! every version of every machine's backup file in the repository's history
//! (`annex::backups`). Ids: the number in `--list` (1 = newest), `local:<file name>`, or
//! `<commit>:<path>` (a commit prefix alone when that commit holds one backup).
//!
//! After a restore this Mixxx holds older values than the repository. Compared with the old
//! base they would look like edits made in this Mixxx, and the next `sync` would write them
//! back — reverting what every machine did since the backup. So the base moves to the
//! restored values: where they differ from the repository, the repository's value is an
//! incoming change (what `import` brings back), never an outgoing one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::annex::cache::Freshness;
use crate::annex::{backups, lock, state};
use crate::cli::args::{Cli, RestoreArgs};
use crate::cli::commands::backup::repo_pattern;
use crate::cli::{Ui, resolve};
use crate::error::{Error, IoSubject, Result};
use crate::exit::ExitCode;
use crate::mixxx::backup::{self, DEFAULT_KEEP, LocalBackups, Restored, Unhealthy};
use crate::mixxx::write;
use crate::model::AnnexKey;
use crate::quote::for_terminal;
use crate::report;
use crate::sync::base::{Agreed, BaseStore};
use crate::sync::plan::Selection;
use crate::sync::{self, Inputs};

/// One backup this machine can restore.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// 1 = newest.
    pub number: usize,
    pub id: String,
    /// `local` or `repository`.
    pub source: &'static str,
    /// RFC 3339 UTC.
    pub time: String,
    pub machine: Option<String>,
    /// The local backup's reason, or the commit's subject.
    pub message: String,
    pub commit: Option<String>,
    /// The local file (absolute), or the path in the repository.
    pub path: String,
    pub key: Option<String>,
    /// Whether the content is in this clone (a repository version may have to be fetched).
    pub present: bool,
    /// False for a byte copy of a database SQLite could not read (kept, never restored
    /// by default).
    pub restorable: bool,
    #[serde(skip)]
    file: Option<PathBuf>,
}

#[derive(Serialize)]
struct ListJson<'a> {
    mixxx_db: String,
    backups: &'a [Listed],
}

pub fn run(cli: &Cli, args: &RestoreArgs, ui: &Ui) -> Result<ExitCode> {
    let (inputs, config) = resolve::inputs_and_config(cli, ui)?;
    let pattern = repo_pattern(&config)?;
    let listed = list(&inputs, &pattern)?;
    let mut out = std::io::stdout().lock();
    if args.list {
        if args.json {
            let doc = ListJson {
                mixxx_db: inputs.mixxx_db.to_string_lossy().into_owned(),
                backups: &listed,
            };
            let _ = writeln!(out, "{}", report::to_json(&doc));
        } else {
            let _ = write!(out, "{}", render_list(&listed));
        }
        return Ok(ExitCode::Success);
    }
    let chosen = choose(&listed, args.backup.as_deref())?;
    let db = &inputs.mixxx_db;

    let process = resolve::mixxx_process(&config);
    write::refuse_if_running(db, Some(&process))?;
    let _lock = lock::acquire(&inputs.repo, "restore", &|holder| {
        say_err!("waiting for {holder} to finish…")
    })?;
    let work = tempfile::Builder::new()
        .prefix("restore-")
        .tempdir_in(inputs.repo.common_dir.join("music-commander"))
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| Error::io("cannot create a temporary folder", e))?;
    let source = source_file(&inputs, chosen, work.path())?;
    backup::check_integrity(&source).map_err(|detail| Error::BackupDamaged {
        id: for_terminal(&chosen.id).into_owned(),
        detail: detail.to_string(),
    })?;

    // The current database first, as a local backup: the restore can be undone with it.
    let locals = LocalBackups::new(&inputs.repo.common_dir, db);
    let exists = db.exists();
    // A locked database is not a broken one: replacing it by rename would pull it from under
    // the connection that holds the lock.
    let healthy = exists
        && match backup::check_integrity(db) {
            Ok(()) => true,
            Err(Unhealthy::Locked) => return Err(Error::MixxxDbLocked { path: db.clone() }),
            Err(Unhealthy::Damaged(_)) => false,
        };
    let saved = match (exists, healthy) {
        (false, _) => None,
        (true, true) => Some(locals.take(db, "restore", DEFAULT_KEEP)?),
        // SQLite cannot read it: keep its bytes as they are.
        (true, false) => Some(locals.take_bytes(db, "restore", DEFAULT_KEEP)?),
    };
    // Fetching the content may have taken a while: ask again right before writing.
    write::refuse_if_running(db, Some(&process))?;
    let how = backup::restore_into(&source, db, healthy)?;
    drop(work);

    if let Some(saved) = &saved {
        let name = saved.path.file_name().unwrap_or_default().to_string_lossy();
        let kind = if healthy {
            "a snapshot"
        } else {
            "a byte copy (SQLite could not read it)"
        };
        let _ = writeln!(
            out,
            "Saved the database as it was first, {kind}: {} (id local:{}).",
            report::quote_path(&saved.path),
            for_terminal(&name)
        );
    }
    let _ = writeln!(
        out,
        "Restored {} ({}, {}, {}) into {}{}.",
        for_terminal(&chosen.id),
        chosen.time,
        for_terminal(chosen.machine.as_deref().unwrap_or("-")),
        for_terminal(&chosen.message),
        report::quote_path(db),
        match how {
            Restored::InPlace => "",
            Restored::Replaced => " (a new file: the old one was missing or unreadable)",
        }
    );
    let next = match rebase(&inputs, ui) {
        Ok(0) => "The restored values match the repository's.",
        Ok(differing) => {
            let _ = writeln!(
                out,
                "This clone's base now holds the restored values, so the next sync does not send them as edits: {} differ from the repository (incoming).",
                report::count(differing, "file", "files")
            );
            "Next: `music-commander status` lists them; `music-commander import` brings the repository's values back into Mixxx."
        }
        Err(e) => {
            // Without a base a sync never overwrites a value the repository holds; it reports
            // conflicts instead.
            let base = BaseStore::path(&inputs.repo.common_dir, db);
            let removed = match std::fs::remove_file(&base) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
            ui.warn(&format!(
                "could not compare the restored database with the repository ({e}); {}",
                if removed {
                    "this clone's base for it was removed instead, so a sync treats differences as conflicts"
                } else {
                    "remove this clone's base before the next sync: .git/music-commander/base-*"
                }
            ));
            "Next: `music-commander status` shows how the restored database differs from the repository."
        }
    };
    let _ = writeln!(out, "{next}");
    Ok(ExitCode::Success)
}

/// Every local backup and every repository version, newest first, numbered.
pub fn list(inputs: &Inputs, pattern: &backups::Pattern) -> Result<Vec<Listed>> {
    let repo = &inputs.repo;
    let machine = backups::machine_name(repo)?;
    let mut all: Vec<Listed> = Vec::new();
    let versions = backups::versions(repo, pattern)?;
    let keys: Vec<&AnnexKey> = versions.iter().filter_map(|v| v.key.as_ref()).collect();
    let mut locations = backups::content_locations(repo, &keys)?.into_iter();
    for v in &versions {
        let file = match &v.key {
            Some(_) => locations.next().flatten(),
            None => None,
        };
        all.push(Listed {
            number: 0,
            id: format!("{}:{}", &v.commit[..v.commit.len().min(7)], v.path),
            source: "repository",
            time: state::rfc3339(v.time),
            machine: v.machine.clone(),
            message: v.subject.clone(),
            commit: Some(v.commit.clone()),
            path: v.path.clone(),
            key: v.key.as_ref().map(|k| k.as_str().to_string()),
            present: file.is_some(),
            restorable: true,
            file,
        });
    }
    for local in LocalBackups::new(&repo.common_dir, &inputs.mixxx_db).list()? {
        let restorable = !local.is_byte_copy();
        let name = local
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        all.push(Listed {
            number: 0,
            id: format!("local:{name}"),
            source: "local",
            time: local.time,
            machine: Some(machine.clone()),
            message: local.reason,
            commit: None,
            path: local.path.to_string_lossy().into_owned(),
            key: None,
            present: true,
            restorable,
            file: Some(local.path),
        });
    }
    // RFC 3339 strings of one shape sort by time. Within one second a local backup counts as
    // the newer: it is taken by a command that writes the database (import, restore), which
    // in practice follows the `backup` it is compared with. Otherwise git's order, then the
    // local names', stands.
    all.sort_by(|a, b| {
        b.time
            .cmp(&a.time)
            .then_with(|| (b.source == "local").cmp(&(a.source == "local")))
    });
    for (i, entry) in all.iter_mut().enumerate() {
        entry.number = i + 1;
    }
    Ok(all)
}

/// The backup `id` names (`None`: the newest).
fn choose<'a>(listed: &'a [Listed], id: Option<&str>) -> Result<&'a Listed> {
    let not_found = |message: String| Error::BackupNotFound { message };
    let Some(id) = id.map(str::trim) else {
        return listed
            .iter()
            .find(|l| l.restorable)
            .ok_or_else(|| not_found("there is no backup to restore".into()));
    };
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let n: usize = id.parse().unwrap_or(0);
        return n.checked_sub(1).and_then(|i| listed.get(i)).ok_or_else(|| {
            not_found(format!(
                "there is no backup number {id} ({} listed)",
                listed.len()
            ))
        });
    }
    if let Some(name) = id.strip_prefix("local:") {
        return listed
            .iter()
            .find(|l| l.source == "local" && l.id == format!("local:{name}"))
            .ok_or_else(|| not_found(format!("there is no local backup {}", for_terminal(name))));
    }
    let (commit, path) = match id.split_once(':') {
        Some((commit, path)) => (commit, Some(path.trim_start_matches("./"))),
        None => (id, None),
    };
    let hex = commit.len() >= 4 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    let matching: Vec<&Listed> = listed
        .iter()
        .filter(|l| {
            hex && l
                .commit
                .as_deref()
                .is_some_and(|c| c.starts_with(&commit.to_ascii_lowercase()))
                && path.is_none_or(|p| p == l.path)
        })
        .collect();
    match matching[..] {
        [one] => Ok(one),
        [] => Err(not_found(format!(
            "no backup has the id {}",
            for_terminal(id)
        ))),
        _ => Err(not_found(format!(
            "{} names {} backups; add the path (COMMIT:PATH) or use a longer commit",
            for_terminal(id),
            matching.len()
        ))),
    }
}

/// The chosen backup as a file to read: a local one copied aside (the backup taken before the
/// restore may prune it), a repository version's annexed content, fetched when missing.
fn source_file(inputs: &Inputs, chosen: &Listed, work: &Path) -> Result<PathBuf> {
    if chosen.source == "local" {
        let from = chosen.file.clone().expect("a local backup has a file");
        let copy = work.join("source.sqlite");
        std::fs::copy(&from, &copy).map_err(|e| {
            Error::io_about(
                IoSubject::Arguments,
                format!("cannot read the backup {}", from.display()),
                e,
            )
        })?;
        return Ok(copy);
    }
    let Some(key) = chosen.key.as_deref().map(AnnexKey::new) else {
        return Err(Error::BackupDamaged {
            id: for_terminal(&chosen.id).into_owned(),
            detail: "this version is not an annexed file".into(),
        });
    };
    if let Some(file) = &chosen.file {
        return Ok(file.clone());
    }
    let missing = |reason: String| Error::BackupContentMissing {
        id: for_terminal(&chosen.id).into_owned(),
        key: for_terminal(key.as_str()).into_owned(),
        reason: for_terminal(&reason).into_owned(),
    };
    say_err!(
        "Fetching backup {} with git-annex…",
        for_terminal(&chosen.id)
    );
    backups::get(&inputs.repo, &key).map_err(|e| missing(e.reason()))?;
    backups::content_locations(&inputs.repo, &[&key])?
        .pop()
        .flatten()
        .ok_or_else(|| missing("git-annex reported success but the content is not here".into()))
}

/// Moves this clone's base to the restored database's values for every file where they
/// differ from the repository (where they agree, the next sync settles the base as always).
/// Returns how many files differ.
fn rebase(inputs: &Inputs, ui: &Ui) -> Result<usize> {
    let (plan, _) = sync::prepare(
        inputs,
        &Selection::default(),
        Freshness::UseCache,
        Default::default(),
        &ui.progress(),
    )?;
    let mut updates: HashMap<AnnexKey, Agreed> = HashMap::new();
    for file in &plan.changes {
        let mut agreed = plan.settled(file, false);
        for change in &file.changes {
            agreed.set(
                plan.managed.annex_name(change.field),
                change.mixxx().to_vec(),
            );
        }
        updates.insert(file.key.clone(), agreed);
    }
    if !updates.is_empty() {
        let store = BaseStore::open(BaseStore::path(&inputs.repo.common_dir, &inputs.mixxx_db));
        store.write(&updates, |_| true).map_err(|e| {
            Error::io(
                format!("cannot write the base {}", store.file().display()),
                e,
            )
        })?;
    }
    Ok(updates.len())
}

fn render_list(listed: &[Listed]) -> String {
    if listed.is_empty() {
        return "No backups yet: `music-commander backup` makes one.\n".into();
    }
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|l| {
            let mut message = for_terminal(&l.message).into_owned();
            if !l.present {
                message.push_str(" (content not here: fetched on restore)");
            }
            if !l.restorable {
                message.push_str(" (byte copy of an unreadable database)");
            }
            [
                l.number.to_string(),
                l.time.clone(),
                for_terminal(l.machine.as_deref().unwrap_or("-")).into_owned(),
                l.source.to_string(),
                for_terminal(&l.id).into_owned(),
                message,
            ]
        })
        .collect();
    let header = ["#", "time", "machine", "source", "id", "message"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str("Restore one with `music-commander restore ID` (or its number); without an argument, the newest restorable one.\n");
    out
}
