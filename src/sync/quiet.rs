//! The quiet check: a sync whose inputs are exactly as they were when an earlier sync found
//! nothing to do has nothing to do either, and says so without reading anything.
//!
//! What a sync's answer depends on, and what stands for it here (each read in microseconds,
//! one `git for-each-ref` aside):
//! - the Mixxx database: its change marker ([`crate::mixxx::change_marker`]: inode, size,
//!   mtime, SQLite's change counter, the `-wal` file), taken before the run reads it;
//! - the repository's files and keys: the git index (its file's stat; git rewrites it on every
//!   change) and every ref with `HEAD` (the key map also reads an adjusted branch's original);
//! - the repository's metadata: every ref again (all git-annex branches) and the journal's
//!   content;
//! - this clone's base file as that run left it, and what the run was asked: the managed
//!   fields with their options, `--prefer`, the music root, the repository root, the
//!   version of this program.
//!
//! The stamp of those is stored, with what that run reported, only by a sync of everything
//! that ended with nothing outgoing, incoming, conflicting, duplicated or failed — or that
//! had only outgoing changes and wrote them all with the direct writer, which says exactly
//! how it moved the git-annex branch: then the stamp is of the inputs as that write left
//! them, and only when nothing else had written in between. A later
//! sync that computes the same stamp repeats that report. Anything that moves — a rating in
//! Mixxx, a `git annex sync`, a `git add`, an edit to the config, even Mixxx opening its
//! database and writing nothing — makes another stamp, and the sync reads everything. A
//! wrong "changed" costs one ordinary run; a wrong "unchanged" cannot happen without one
//! of those files changing content while keeping its size, inode and nanosecond mtime.

use std::path::{Path, PathBuf};

use crate::annex::Repo;
use crate::annex::branch::BRANCH;
use crate::annex::cache::{Decoder, Encoder, checksum};
use crate::annex::journal::Journal;
use crate::annex::writer::BranchMove;
use crate::error::Result;
use crate::sync::plan::{Direction, Plan, SkipReason, Skipped};

const MAGIC: &[u8; 8] = b"mc-quiet";

/// The name of the one phase a quiet run has, in `-v` timings.
pub const TIMING: &str = "quiet check (inputs as a sync that found nothing to do left them)";

/// The inputs of a run, taken before it reads them.
#[derive(Clone)]
pub struct Inputs {
    mixxx: Vec<u8>,
    index: Vec<u8>,
    head: Vec<u8>,
    /// `for-each-ref`: `<oid> <refname>` lines, sorted by name.
    refs: Vec<u8>,
    journal: Vec<u8>,
    setup: Vec<u8>,
}

impl Inputs {
    /// `setup` is what the run was asked (fields, options, roots), in a fixed form.
    pub fn take(repo: &Repo, mixxx_db: &Path, setup: &str) -> Result<Inputs> {
        let mixxx = crate::mixxx::change_marker(mixxx_db);
        let index = crate::fingerprint::file(&index_file(repo));
        let head = std::fs::read(repo.git_dir.join("HEAD")).unwrap_or_default();
        let refs = repo.git_output(&["for-each-ref", "--format=%(objectname) %(refname)"])?;
        let mut journal = Journal::open(repo)?;
        journal.preload()?;
        Ok(Inputs {
            mixxx,
            index,
            head,
            refs,
            journal: journal.fingerprint(),
            setup: setup.as_bytes().to_vec(),
        })
    }

    /// The inputs as a direct write left them, when they are exactly these with the
    /// git-annex branch moved from the head these saw to the write's commit: it built on
    /// that head and there was no journal to fold in. Otherwise something else wrote
    /// meanwhile, which no run has read yet: None.
    pub fn after_write(&self, moved: &BranchMove) -> Option<Inputs> {
        if !self.journal.is_empty() || moved.journal_committed {
            return None;
        }
        let before = format!("{} {BRANCH}", moved.from);
        let mut refs = Vec::with_capacity(self.refs.len());
        let mut found = false;
        for line in self.refs.split_inclusive(|&b| b == b'\n') {
            if line.strip_suffix(b"\n").unwrap_or(line) == before.as_bytes() {
                refs.extend_from_slice(format!("{} {BRANCH}\n", moved.to).as_bytes());
                found = true;
            } else {
                refs.extend_from_slice(line);
            }
        }
        found.then(|| Inputs {
            refs,
            ..self.clone()
        })
    }

    /// True when the last quiet run stored these inputs for `base_file` as it is now; then
    /// what that run reported (nothing to do).
    pub fn stored(&self, base_file: &Path) -> Option<Stored> {
        let bytes = std::fs::read(path(base_file)).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (sum, body) = rest.split_first_chunk::<8>()?;
        if u64::from_le_bytes(*sum) != self.sum(base_file, body) {
            return None;
        }
        Stored::decode(body)
    }

    /// Stores these inputs with the report of a run that left nothing to do, for
    /// `base_file` as it is now. Temp file + rename; a failure only costs the shortcut.
    pub fn store(&self, base_file: &Path, report: &Stored) -> std::io::Result<()> {
        let body = report.encode();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.sum(base_file, &body).to_le_bytes());
        out.extend_from_slice(&body);
        let path = path(base_file);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, &out)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Forgets the stored inputs (a run that did something, or was asked something else).
    pub fn forget(base_file: &Path) {
        let _ = std::fs::remove_file(path(base_file));
    }

    fn sum(&self, base_file: &Path, body: &[u8]) -> u64 {
        let mut bytes = Vec::new();
        for part in [
            &self.mixxx,
            &self.index,
            &self.head,
            &self.refs,
            &self.journal,
            &self.setup,
            &crate::fingerprint::file(base_file),
            &env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        ] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(body);
        checksum(&bytes)
    }
}

/// What a quiet run reported, enough to report it again.
pub struct Stored {
    pub tracks: usize,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
}

impl Stored {
    /// What a run of `plan` would report once its `written` files match too.
    pub fn of(plan: &Plan, written: usize) -> Stored {
        Stored {
            tracks: plan.tracks,
            unchanged: plan.unchanged + written,
            skipped: plan.skipped.clone(),
            warnings: plan.warnings.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::default();
        out.len(self.tracks);
        out.len(self.unchanged);
        out.len(self.skipped.len());
        for s in &self.skipped {
            out.u8(SkipReason::ALL
                .iter()
                .position(|r| *r == s.reason)
                .expect("every reason is listed") as u8);
            out.bytes(s.location.as_bytes());
        }
        out.len(self.warnings.len());
        for w in &self.warnings {
            out.bytes(w.as_bytes());
        }
        out.as_slice().to_vec()
    }

    fn decode(body: &[u8]) -> Option<Stored> {
        let mut d = Decoder::new(body);
        let tracks = d.len()?;
        let unchanged = d.len()?;
        let n = d.count(5)?;
        let mut skipped = Vec::with_capacity(n);
        for _ in 0..n {
            let reason = *SkipReason::ALL.get(d.u8()? as usize)?;
            skipped.push(Skipped {
                location: d.string()?.to_string(),
                reason,
            });
        }
        let n = d.count(4)?;
        let mut warnings = Vec::with_capacity(n);
        for _ in 0..n {
            warnings.push(d.string()?.to_string());
        }
        d.is_empty().then_some(Stored {
            tracks,
            unchanged,
            skipped,
            warnings,
        })
    }
}

/// Whether a finished run may store its inputs as quiet: it found nothing to do at all.
pub fn is_quiet(plan: &Plan) -> bool {
    plan.changes.is_empty() && plan.duplicates.is_empty()
}

/// Whether a run leaves nothing to do once its outgoing changes are written: nothing
/// incoming, conflicting or duplicated.
pub fn only_outgoing(plan: &Plan) -> bool {
    plan.duplicates.is_empty()
        && plan
            .changes
            .iter()
            .all(|c| !c.has(Direction::Incoming) && !c.has(Direction::Conflict))
}

/// Where the stamp of `base_file` is kept.
fn path(base_file: &Path) -> PathBuf {
    let mut name = base_file.as_os_str().to_os_string();
    name.push(".quiet");
    PathBuf::from(name)
}

/// The index git reads for this work tree (`GIT_INDEX_FILE` when the user set one).
fn index_file(repo: &Repo) -> PathBuf {
    match std::env::var_os("GIT_INDEX_FILE") {
        Some(file) => {
            let file = PathBuf::from(file);
            match file.is_absolute() {
                true => file,
                false => repo.root.join(file),
            }
        }
        None => repo.git_dir.join("index"),
    }
}
