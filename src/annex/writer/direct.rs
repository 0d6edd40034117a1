//! The direct writer: the `.log.met` blobs git-annex would write, committed straight onto the
//! git-annex branch with one `git fast-import`, under git-annex's own journal lock.
//!
//! What git-annex does for a `git annex metadata --batch` set followed by a commit, and how
//! this writer does the same (git-annex 10.20230126, `Annex/Branch.hs`, `Annex/Journal.hs`):
//!
//! - Unmerged sibling branches (`*/git-annex` not contained in the local branch) are merged by
//!   git-annex itself before anything is written ([`branch::merge_other_annex_branches`], as
//!   the git-annex writer does: a batch process merges none, measured), and a sibling fetched
//!   meanwhile is noticed under the lock and merged the same way. Siblings git-annex leaves
//!   unmerged (`annex.merge-annex-branches=false`) are left as the git-annex writer leaves them.
//! - Every change to the journal, the branch index (`annex/index`) and the branch happens under
//!   an exclusive lock on `annex/journal.lck`; we hold it from reading the branch until the
//!   branch, the journal and the index agree again, so a concurrent git-annex neither loses our
//!   write nor has its own lost.
//! - Each key's new log is computed from the journal file when there is one, else the branch
//!   blob, exactly as git-annex computes it ([`logmet`]).
//! - A non-empty journal is committed first, verbatim, as git-annex's `stageJournal` would, in
//!   a commit of its own; its files are removed only once the branch holds them, and our
//!   commit is put on top only after that. A kill at any point leaves the branch at the old
//!   head (journal intact), at the journal commit (journal files equal to the committed
//!   blobs, as after an interrupted git-annex commit), or at our commit: never a journal
//!   file that hides a committed write.
//! - The branch moves by compare-and-swap (`update-ref NEW OLD`); when another writer moved it
//!   first, everything is recomputed on the new head.
//! - git-annex records in `annex/index.lck` the branch commit its index matches, and merges the
//!   branch into the index when they differ. When the index matched the head we built on, we
//!   replace it with our tree and record our commit, which is the state git-annex's own commit
//!   would have left; otherwise we leave both alone and git-annex merges our commit into its
//!   index (union merge) the next time it commits.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

use super::batch::encode;
use super::journal_lock::{JournalLock, Locked};
use super::logmet::{Clock, Log};
use super::{FailureKind, RecordOutcome, Requests, Tally, WriteOptions, WriteReport, WriteRequest};
use crate::annex::Repo;
use crate::annex::branch::{self, BRANCH};
use crate::annex::git::CommandError;
use crate::annex::metalog;
use crate::annex::repo::{Blob, CatFile};
use crate::annex::tree;
use crate::error::{Error, Result};

/// The ref fast-import builds on; never a `*/git-annex` name, so git-annex ignores it.
const WORK_REF: &str = "refs/music-commander/direct-write";

/// How long the whole write is recomputed when another writer keeps moving the branch or
/// fetching siblings in between (with a growing pause each time).
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the direct writer cannot be used in this repository (the git-annex writer is used
/// instead), or None.
pub(super) fn unsupported(repo: &Repo) -> Result<Option<&'static str>> {
    // `--type=bool` prints git's canonical spelling of whatever boolean the user wrote.
    let out = repo
        .git()
        .args(["config", "--type=bool", "--get", "annex.pidlock"])
        .output()
        .map_err(|e| Error::git("cannot read the git configuration", e))?;
    Ok((String::from_utf8_lossy(&out.stdout).trim() == "true")
        .then_some("annex.pidlock is set: git-annex locks with a pid file, not the journal lock"))
}

/// One validated request: its key, and where it is in the requests.
struct Item {
    key: crate::model::AnnexKey,
    index: usize,
}

/// Outcome of one request in one attempt.
#[derive(Clone)]
enum Fate {
    Written,
    Refused(String),
}

pub(super) fn write(
    repo: &Repo,
    requests: &dyn Requests,
    last: Option<&dyn Fn(&Tally) -> WriteRequest>,
    opts: &WriteOptions,
    progress: &(dyn Fn(usize) + Sync),
    cancel: &AtomicBool,
) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let mut items = Vec::with_capacity(requests.len());
    for index in 0..requests.len() {
        let req = requests.get(index);
        match encode(&req) {
            Ok(_) => items.push(Item {
                key: req.key.clone(),
                index,
            }),
            Err(why) => report.failed.push((req.key.clone(), why)),
        }
    }
    if items.is_empty() && last.is_none() {
        return Ok(report);
    }
    let interrupted = |mut report: WriteReport, items: Vec<Item>| {
        report.interrupted = true;
        for item in items {
            report.failed.push((item.key, FailureKind::Interrupted));
        }
        Ok(report)
    };
    if cancel.load(Ordering::Relaxed) {
        return interrupted(report, items);
    }
    let candidate = candidate_clock(opts)?;
    let before = branch::branch_head(repo)?;
    branch::merge_other_annex_branches(repo)?;
    // What git-annex left unmerged (it may be told not to merge); the git-annex writer writes
    // regardless of those, and so do we. Only a sibling fetched since is merged first.
    let mut left_unmerged = unmerged_tips(repo)?;

    let annex_dir = repo.common_dir.join("annex");
    let mut lock = match JournalLock::acquire(&annex_dir.join("journal.lck"), cancel)
        .map_err(|e| Error::io("cannot lock git-annex's journal", e))?
    {
        Locked::Held(lock) => lock,
        Locked::Cancelled => return interrupted(report, items),
    };

    let mut outcome = None;
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(50);
    let mut attempts = 0;
    while attempts == 0 || started.elapsed() < RETRY_FOR {
        attempts += 1;
        let unmerged = unmerged_tips(repo)?;
        if unmerged.iter().any(|t| !left_unmerged.contains(t)) {
            // git-annex merges them itself and needs the lock for it.
            drop(lock);
            branch::merge_other_annex_branches(repo)?;
            left_unmerged = unmerged_tips(repo)?;
            lock = match JournalLock::acquire(&annex_dir.join("journal.lck"), cancel)
                .map_err(|e| Error::io("cannot lock git-annex's journal", e))?
            {
                Locked::Held(lock) => lock,
                Locked::Cancelled => return interrupted(report, items),
            };
            continue;
        }
        match attempt(
            repo,
            &annex_dir,
            requests,
            &items,
            last,
            report.failed.len(),
            opts,
            candidate,
            progress,
            cancel,
        )? {
            Attempt::Done(done) => {
                outcome = Some(done);
                break;
            }
            Attempt::Raced => {
                // Let whatever moved the branch settle (git-annex waits 0.1 s on a race).
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
            Attempt::Cancelled => {
                drop(lock);
                return interrupted(report, items);
            }
        }
    }
    drop(lock);
    let Some(done) = outcome else {
        return Err(Error::git(
            "cannot write the git-annex branch",
            repo.git().protocol(format!(
                "{BRANCH} kept moving while writing ({attempts} attempts in {:.0?})",
                started.elapsed()
            )),
        ));
    };

    for (item, fate) in items.into_iter().zip(done.fates) {
        match fate {
            Fate::Written => report.written.push(item.key),
            Fate::Refused(why) => report.failed.push((item.key, FailureKind::Refused(why))),
        }
    }
    report.record = done.record;
    report.moved = Some(done.moved);
    report.commits = branch::commits_since(repo, before.as_deref())?;
    progress(report.written.len() + report.failed.len());
    if report.written.len() > super::GC_THRESHOLD {
        // Hygiene only: a failed gc must not turn a successful write into an error.
        let _ = repo.git().args(["gc", "--auto", "--quiet"]).output();
    }
    Ok(report)
}

/// The candidate clock of every new line: the option, else `GIT_ANNEX_VECTOR_CLOCK` (as
/// git-annex reads it), else now. None means "now, per request".
fn candidate_clock(opts: &WriteOptions) -> Result<Option<Clock>> {
    let pinned = opts
        .vector_clock
        .clone()
        .or_else(|| std::env::var("GIT_ANNEX_VECTOR_CLOCK").ok());
    // git-annex falls back to the time when the variable does not parse; so do we.
    Ok(pinned.as_deref().and_then(Clock::parse_exact))
}

fn now_clock(previous: &mut Clock) -> Clock {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // git-annex sleeps a microsecond between batch requests so no two share a clock.
    let clock = Clock::from_unix(now.as_secs(), now.subsec_nanos()).max(Clock(previous.0 + 1000));
    *previous = clock;
    clock
}

/// (commit, ref) of every sibling branch the local branch does not contain.
fn unmerged_tips(repo: &Repo) -> Result<Vec<(String, String)>> {
    let tips = match branch::unmerged_siblings(repo)? {
        Some(siblings) => siblings,
        None => branch::tips(repo)?,
    };
    Ok(tips.into_iter().map(|t| (t.oid, t.name)).collect())
}

struct Done {
    fates: Vec<Fate>,
    record: RecordOutcome,
    moved: super::BranchMove,
}

enum Attempt {
    Done(Done),
    /// The branch moved under us; start again.
    Raced,
    Cancelled,
}

/// git-annex's journal: branch path → complete content, and the file each came from.
struct JournalFiles {
    files: Vec<(Vec<u8>, PathBuf, Vec<u8>)>,
}

impl JournalFiles {
    fn read(dir: &Path) -> Result<JournalFiles> {
        let mut files = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(JournalFiles { files });
            }
            Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
            let path = entry.path();
            let content = std::fs::read(&path)
                .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
            files.push((branch_path_of(entry.file_name().as_bytes()), path, content));
        }
        files.sort();
        Ok(JournalFiles { files })
    }
}

/// `fileJournal`: a journal file name back to its branch path (`_` → `/`, `__` → `_`).
fn branch_path_of(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] != b'_' {
            out.push(name[i]);
            i += 1;
            continue;
        }
        match name.get(i + 1) {
            None => i += 1,
            Some(b'_') => {
                out.push(b'_');
                i += 2;
            }
            Some(_) => {
                out.push(b'/');
                i += 1;
            }
        }
    }
    out
}

/// Reading a journal file to change it, git-annex drops an unterminated last line.
fn complete_lines(content: &[u8]) -> &[u8] {
    match content.iter().rposition(|&b| b == b'\n') {
        Some(i) => &content[..=i],
        None => &[],
    }
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    repo: &Repo,
    annex_dir: &Path,
    requests: &dyn Requests,
    items: &[Item],
    last: Option<&dyn Fn(&Tally) -> WriteRequest>,
    invalid: usize,
    opts: &WriteOptions,
    candidate: Option<Clock>,
    progress: &(dyn Fn(usize) + Sync),
    cancel: &AtomicBool,
) -> Result<Attempt> {
    let Some(head) = branch::branch_head(repo)? else {
        return Err(Error::git(
            "cannot write the git-annex branch",
            repo.git()
                .protocol(format!("{BRANCH} does not exist (run `git annex init`)")),
        ));
    };
    let index_status = std::fs::read(annex_dir.join("index.lck")).ok();
    let index_matches = annex_dir.join("index").exists()
        && index_status
            .as_deref()
            .map(|s| {
                String::from_utf8_lossy(s)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    == head
            })
            .unwrap_or(false);
    let journal = JournalFiles::read(&annex_dir.join("journal"))?;
    let journal_content: HashMap<&[u8], &[u8]> = journal
        .files
        .iter()
        .map(|(p, _, c)| (p.as_slice(), complete_lines(c)))
        .collect();

    let mut cat = CatFile::start(repo)?;
    let levels = {
        let difference = match journal_content.get(b"difference.log".as_slice()) {
            Some(c) => Some(c.to_vec()),
            None => match cat.get(format!("{head}:difference.log").as_bytes(), u64::MAX)? {
                Blob::Content(c) => Some(c),
                _ => None,
            },
        };
        match difference {
            Some(c) if c.windows(18).any(|w| w == b"OneLevelBranchHash") => 1,
            _ => 2,
        }
    };

    // Current content of every path we write: journal, else the branch blob.
    // The record's key is read with the others: its request is made only once the rest are
    // applied (it counts them), but its key does not depend on them.
    // A key the protocol refuses is never looked up (a newline in it would split cat-file's
    // requests); the record then fails as before.
    let record_key = last
        .map(|last| {
            last(&Tally {
                written: 0,
                failed: 0,
            })
        })
        .filter(|req| encode(req).is_ok())
        .map(|req| req.key);
    let mut paths: Vec<String> = Vec::with_capacity(items.len() + 1);
    let mut path_of: HashMap<&str, usize> = HashMap::with_capacity(items.len() + 1);
    for key in items.iter().map(|i| &i.key).chain(&record_key) {
        let key = key.as_str();
        if !path_of.contains_key(key) {
            path_of.insert(key, paths.len());
            paths.push(metalog::met_path_levels(key, levels));
        }
    }
    let mut current: Vec<Option<Vec<u8>>> = vec![None; paths.len()];
    let missing: Vec<usize> = (0..paths.len())
        .filter(|&i| {
            if let Some(c) = journal_content.get(paths[i].as_bytes()) {
                current[i] = Some(c.to_vec());
                false
            } else {
                true
            }
        })
        .collect();
    let specs: Vec<Vec<u8>> = if missing.len() <= tree::DESCENT_LIMIT {
        let wanted: Vec<&str> = missing.iter().map(|&i| paths[i].as_str()).collect();
        tree::blob_ids_by_descent(&mut cat, &head, &wanted)?
    } else {
        let tree = list_tree(repo, &head)?;
        missing
            .iter()
            .map(|&i| {
                tree.get(paths[i].as_bytes())
                    .cloned()
                    // An id that cannot exist: cat-file answers "missing".
                    .unwrap_or_else(|| b"0000000000000000000000000000000000000000".to_vec())
            })
            .collect()
    };
    let blobs = cat.get_many(&specs, u64::MAX)?;
    cat.finish()?;
    for (&i, blob) in missing.iter().zip(blobs) {
        if let Blob::Content(c) = blob {
            current[i] = Some(c);
        }
    }

    let mut slots: Vec<Slot> = paths
        .into_iter()
        .zip(current)
        .map(|(path, current)| Slot {
            path,
            current,
            refused: None,
            changed: false,
        })
        .collect();
    // A log goes into the stream once its last request is applied, and is dropped then: held
    // until the end, a 100k first sync kept 32 MB of new logs.
    let mut left = vec![0u32; slots.len()];
    for item in items {
        left[path_of[item.key.as_str()]] += 1;
    }
    let record_slot = record_key.as_ref().map(|k| path_of[k.as_str()]);

    let ident = Ident::read(repo)?;
    let journal_message = (!journal.files.is_empty()).then(|| journal_message(repo));
    let streamed = fast_import(repo, |out: &mut dyn Write| {
        let mut stream = Stream::new(out);
        let mut commits = Commits {
            made: 0,
            parent: head.clone(),
            files: usize::MAX,
            // Commits of at most this many files follow the requests' order; the record joins
            // the last one, as with git-annex.
            chunk: opts.batch_size.unwrap_or(usize::MAX).max(1),
        };
        if let Some(message) = &journal_message {
            commits.open(&mut stream.buf, &ident, message);
            for (path, _, content) in &journal.files {
                modify(&mut stream.buf, path, content);
                stream.pass()?;
            }
            commits.files = usize::MAX;
        }
        // `joins`: into the open commit however full (the record joins the last one).
        let emit = |stream: &mut Stream,
                    commits: &mut Commits,
                    slot: &mut Slot,
                    joins: bool|
         -> std::io::Result<()> {
            if !slot.changed {
                return Ok(());
            }
            if commits.files == usize::MAX || (!joins && commits.files >= commits.chunk) {
                commits.open(&mut stream.buf, &ident, &opts.commit_message);
            }
            let content = slot.current.take().expect("a changed log has content");
            modify(
                &mut stream.buf,
                std::mem::take(&mut slot.path).as_bytes(),
                &content,
            );
            commits.files += 1;
            stream.pass()
        };
        let mut previous = Clock(0);
        let mut fates = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let clock = candidate.unwrap_or_else(|| now_clock(&mut previous));
            let req = requests.get(item.index);
            let i = path_of[item.key.as_str()];
            fates.push(slots[i].apply(&req.fields, clock));
            left[i] -= 1;
            if left[i] == 0 && Some(i) != record_slot {
                emit(&mut stream, &mut commits, &mut slots[i], false)?;
            }
            if n % 1024 == 0 {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                progress(n);
            }
        }
        let mut record = RecordOutcome::NotSent;
        if let Some(last) = last {
            let written = fates.iter().filter(|f| matches!(f, Fate::Written)).count();
            let tally = Tally {
                written,
                failed: invalid + fates.len() - written,
            };
            let req = last(&tally);
            record = match (encode(&req), record_slot) {
                (Err(why), _) => RecordOutcome::Failed(why),
                (Ok(_), Some(i)) if Some(&req.key) == record_key.as_ref() => {
                    let clock = candidate.unwrap_or_else(|| now_clock(&mut previous));
                    match slots[i].apply(&req.fields, clock) {
                        Fate::Written => RecordOutcome::Written,
                        Fate::Refused(why) => RecordOutcome::Failed(FailureKind::Refused(why)),
                    }
                }
                (Ok(_), _) => RecordOutcome::Failed(FailureKind::Refused(
                    "the record's key changed with its tally".to_string(),
                )),
            };
            if let Some(i) = record_slot {
                emit(&mut stream, &mut commits, &mut slots[i], true)?;
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        for m in 1..=commits.made {
            stream
                .buf
                .extend_from_slice(format!("get-mark :{m}\n").as_bytes());
        }
        stream.buf.extend_from_slice(b"done\n");
        stream.out.write_all(&stream.buf)?;
        Ok(Some((fates, record, commits.made)))
    })?;
    let Some((marks, (fates, record, marks_made))) = streamed else {
        return Ok(Attempt::Cancelled);
    };
    if marks.len() != marks_made {
        return Err(Error::git(
            "cannot write the git-annex branch",
            repo.git().protocol(format!(
                "git fast-import gave {} commits for {marks_made} marks",
                marks.len()
            )),
        ));
    }
    let journal_mark = journal_message.is_some().then_some(1);
    let Some(last_commit) = marks.last().cloned() else {
        // No journal, and nothing any request changed.
        return Ok(Attempt::Done(Done {
            fates,
            record,
            moved: super::BranchMove {
                from: head.clone(),
                to: head,
                journal_committed: false,
            },
        }));
    };

    let mut moved_from = head.clone();
    if let Some(jm) = journal_mark {
        let journal_commit = &marks[jm - 1];
        if !compare_and_swap(
            repo,
            journal_commit,
            &moved_from,
            journal_commit == &last_commit,
        )? {
            return Ok(Attempt::Raced);
        }
        // Only now: the branch holds every journal file, so removing them loses nothing.
        for (_, file, _) in &journal.files {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("remove {}", file.display()), e)),
            }
        }
        moved_from = journal_commit.clone();
    }
    if moved_from != last_commit && !compare_and_swap(repo, &last_commit, &moved_from, true)? {
        if journal_mark.is_some() {
            // The journal commit is in; the index no longer matches what it recorded.
            sync_index(repo, annex_dir, &head, &moved_from, index_matches)?;
        }
        return Ok(Attempt::Raced);
    }
    sync_index(repo, annex_dir, &head, &last_commit, index_matches)?;
    Ok(Attempt::Done(Done {
        fates,
        record,
        moved: super::BranchMove {
            from: head,
            to: last_commit,
            journal_committed: journal_mark.is_some(),
        },
    }))
}

/// One branch path we write: what it holds, as our requests change it.
struct Slot {
    path: String,
    current: Option<Vec<u8>>,
    /// Why it cannot be rewritten, once found.
    refused: Option<String>,
    changed: bool,
}

impl Slot {
    fn apply(
        &mut self,
        fields: &std::collections::BTreeMap<String, Vec<String>>,
        clock: Clock,
    ) -> Fate {
        if let Some(why) = &self.refused {
            return Fate::Refused(why.clone());
        }
        // Parsed afresh for every request, as git-annex reads the journal file again for each
        // change; only the bytes are kept between requests (a 100k first sync held 370 MiB of
        // parsed logs otherwise).
        let mut log = match Log::parse(self.current.as_deref().unwrap_or_default()) {
            Ok(log) => log,
            Err(_) => {
                let why = "its metadata log holds a clock too large to rewrite exactly; \
                           use `--writer git-annex` for this file"
                    .to_string();
                self.refused = Some(why.clone());
                return Fate::Refused(why);
            }
        };
        if log.apply(
            fields.iter().map(|(f, v)| (f.as_str(), v.as_slice())),
            clock,
        ) {
            self.current = Some(log.build());
            self.changed = true;
        }
        Fate::Written
    }
}

/// git-annex's message for a journal commit (`annex.commitmessage`, else "update").
fn journal_message(repo: &Repo) -> String {
    repo.git()
        .args(["config", "--get", "annex.commitmessage"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim_end_matches('\n')
                .to_string()
        })
        .unwrap_or_else(|| "update".to_string())
}

/// Brings git-annex's branch index from `from` to `commit`, when it matched `from`, the head
/// we built on (otherwise git-annex merges the branch into it on its next commit, as for any
/// push). Only the paths the two commits differ in are restaged: `read-tree` of the whole
/// branch took 0.46 s at 100,000 files for a 1,000-file write, and it would also drop what
/// git-annex staged there and has not committed yet.
fn sync_index(
    repo: &Repo,
    annex_dir: &Path,
    from: &str,
    commit: &str,
    matched: bool,
) -> Result<()> {
    if !matched || from == commit {
        return Ok(());
    }
    let index = annex_dir.join("index");
    // Under the journal lock a leftover index.lock is stale (git-annex's prepareModifyIndex).
    let _ = std::fs::remove_file(annex_dir.join("index.lock"));
    // The changed paths stream from diff-tree into update-index: at 100,000 files the diff
    // is 15 MB, which held whole (with the lines made from it) was a first sync's peak.
    let diff = repo
        .git()
        .args(["diff-tree", "-r", "-z", "--no-renames", from, commit]);
    let update =
        repo.git()
            .env("GIT_INDEX_FILE", &index)
            .args(["update-index", "-z", "--index-info"]);
    let failed = |e| Error::git("cannot update git-annex's branch index", e);
    let mut differ = diff
        .spawn(Stdio::null(), Stdio::piped(), Stdio::piped())
        .map_err(failed)?;
    let mut updater = update
        .spawn(Stdio::piped(), Stdio::null(), Stdio::piped())
        .map_err(failed)?;
    let changes = differ.stdout.take().expect("stdout is piped");
    let mut lines = updater.stdin.take().expect("stdin is piped");
    let (diff_err, update_err) = std::thread::scope(|scope| {
        let drain = |pipe: Option<std::process::ChildStderr>| {
            scope.spawn(move || {
                let mut err = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut err);
                }
                err
            })
        };
        let diff_err = drain(differ.stderr.take());
        let update_err = drain(updater.stderr.take());
        let mut changes = std::io::BufReader::with_capacity(1 << 16, changes);
        let (mut meta, mut path, mut line) = (Vec::new(), Vec::new(), Vec::new());
        // A write error means update-index died; its exit status says why.
        while changes.read_until(0, &mut meta).is_ok_and(|n| n > 0)
            && changes.read_until(0, &mut path).is_ok_and(|n| n > 0)
        {
            line.clear();
            index_line(strip_nul(&meta), strip_nul(&path), &mut line);
            if lines.write_all(&line).is_err() {
                break;
            }
            meta.clear();
            path.clear();
        }
        drop(lines);
        (
            diff_err.join().unwrap_or_default(),
            update_err.join().unwrap_or_default(),
        )
    });
    for (child, command, err) in [
        (&mut differ, &diff, diff_err),
        (&mut updater, &update, update_err),
    ] {
        let status = child
            .wait()
            .map_err(|e| Error::io("cannot wait for git", e))?;
        if !status.success() {
            return Err(failed(command.failed(status, &err)));
        }
    }
    let tmp = annex_dir.join(format!("index.lck.music-commander.{}", std::process::id()));
    std::fs::write(&tmp, format!("{commit}\n"))
        .and_then(|()| std::fs::rename(&tmp, annex_dir.join("index.lck")))
        .map_err(|e| Error::io("cannot record git-annex's branch index state", e))
}

/// The `update-index -z --index-info` line, appended to `out`, that stages the new side of
/// one raw `diff-tree -r -z` record (`:<mode> <mode> <oid> <oid> <status>`, `<path>`); a
/// deleted path gets mode 0, which removes it.
fn index_line(meta: &[u8], path: &[u8], out: &mut Vec<u8>) {
    let parts: Vec<&[u8]> = meta.split(|&b| b == b' ').collect();
    let [_, mode, _, oid, status] = parts[..] else {
        return;
    };
    if status.starts_with(b"D") {
        out.extend_from_slice(b"0 ");
        out.extend(std::iter::repeat_n(b'0', oid.len()));
    } else {
        out.extend_from_slice(mode);
        out.push(b' ');
        out.extend_from_slice(oid);
    }
    out.push(b'\t');
    out.extend_from_slice(path);
    out.push(0);
}

fn strip_nul(field: &[u8]) -> &[u8] {
    field.strip_suffix(&[0]).unwrap_or(field)
}

/// `git update-ref BRANCH new old`, in one transaction that also drops the work ref when
/// `finish`; false when the branch is no longer at `old`.
fn compare_and_swap(repo: &Repo, new: &str, old: &str, finish: bool) -> Result<bool> {
    let mut input = format!("update {BRANCH} {new} {old}\n");
    if finish {
        input.push_str(&format!("delete {WORK_REF}\n"));
    }
    let out = repo
        .git()
        .args([
            "update-ref",
            "-m",
            "music-commander: direct metadata write",
            "--stdin",
        ])
        .stdin(input.into_bytes())
        .output()
        .map_err(|e| Error::git("cannot move the git-annex branch", e))?;
    if out.status.success() {
        return Ok(true);
    }
    // Lost the race (someone moved the branch), or a real failure: tell them apart.
    match branch::branch_head(repo)? {
        Some(now) if now != old => Ok(false),
        _ => Err(Error::git(
            "cannot move the git-annex branch",
            repo.git()
                .args(["update-ref", "--stdin"])
                .failed(out.status, &out.stderr),
        )),
    }
}

/// Author and committer, as `git commit-tree` would take them.
struct Ident {
    author: String,
    committer: String,
}

impl Ident {
    fn read(repo: &Repo) -> Result<Ident> {
        let var = |name: &str| -> std::result::Result<String, CommandError> {
            repo.git()
                .args(["var", name])
                .stdout_text()
                .map(|s| s.trim_end().to_string())
        };
        let doing = "cannot commit the git-annex branch";
        Ok(Ident {
            author: var("GIT_AUTHOR_IDENT").map_err(|e| Error::git(doing, e))?,
            committer: var("GIT_COMMITTER_IDENT").map_err(|e| Error::git(doing, e))?,
        })
    }
}

fn commit_header(stream: &mut Vec<u8>, mark: usize, ident: &Ident, message: &str, parent: &str) {
    stream.extend_from_slice(format!("commit {WORK_REF}\nmark :{mark}\n").as_bytes());
    stream.extend_from_slice(format!("author {}\n", ident.author).as_bytes());
    stream.extend_from_slice(format!("committer {}\n", ident.committer).as_bytes());
    stream.extend_from_slice(format!("data {}\n{message}\n", message.len()).as_bytes());
    stream.extend_from_slice(format!("from {parent}\n").as_bytes());
}

/// `M 100644 inline "<path>"` and the blob, the path always C-quoted.
fn modify(stream: &mut Vec<u8>, path: &[u8], content: &[u8]) {
    stream.extend_from_slice(b"M 100644 inline \"");
    for &b in path {
        match b {
            b'"' => stream.extend_from_slice(b"\\\""),
            b'\\' => stream.extend_from_slice(b"\\\\"),
            0x20..=0x7e => stream.push(b),
            _ => stream.extend_from_slice(format!("\\{b:03o}").as_bytes()),
        }
    }
    stream.extend_from_slice(format!("\"\ndata {}\n", content.len()).as_bytes());
    stream.extend_from_slice(content);
    stream.push(b'\n');
}

/// How much of the fast-import stream is made before it is written to the pipe.
const STREAM_CHUNK: usize = 1 << 20;

/// The fast-import stream, passed to the pipe a megabyte at a time: built whole first, a
/// 100k first sync held all its logs twice (slots and stream, 58 MiB more).
struct Stream<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
}

impl<'a> Stream<'a> {
    fn new(out: &'a mut dyn Write) -> Stream<'a> {
        Stream {
            out,
            buf: Vec::with_capacity(STREAM_CHUNK + 4096),
        }
    }

    fn pass(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= STREAM_CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The commits of one stream, each on the one before, the first on the branch head.
struct Commits {
    made: usize,
    parent: String,
    /// Files in the open commit; `usize::MAX` when none is open.
    files: usize,
    chunk: usize,
}

impl Commits {
    fn open(&mut self, buf: &mut Vec<u8>, ident: &Ident, message: &str) {
        self.made += 1;
        commit_header(buf, self.made, ident, message, &self.parent);
        self.parent = format!(":{}", self.made);
        self.files = 0;
    }
}

/// Runs `git fast-import` on the stream `produce` writes (on this thread, while others read
/// the answers); returns the commit ids of its marks, in order, and what `produce` returned.
/// `None` when `produce` gave up (`Ok(None)`): the stream ends without `done`, and
/// fast-import makes nothing anyone can see.
fn fast_import<T>(
    repo: &Repo,
    produce: impl FnOnce(&mut dyn Write) -> std::io::Result<Option<T>>,
) -> Result<Option<(Vec<String>, T)>> {
    // fast-import allocates and frees per object; glibc then shrinks and regrows the heap
    // with `brk` tens of thousands of times (measured: 55,000 calls, 0.75 of 1.0 s for 10,000
    // logs). Padding the heap and not trimming it makes that 0.25 s.
    let command = repo
        .git()
        .env("MALLOC_TOP_PAD_", "67108864")
        .env("MALLOC_TRIM_THRESHOLD_", "268435456")
        .args(["fast-import", "--quiet", "--force", "--done"]);
    let mut child = command
        .spawn(Stdio::piped(), Stdio::piped(), Stdio::piped())
        .map_err(|e| Error::git("cannot write the git-annex branch", e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (produced, out, err) = std::thread::scope(|scope| {
        let out = scope.spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let err = scope.spawn(move || {
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err);
            err
        });
        let produced = produce(&mut stdin);
        drop(stdin);
        (
            produced,
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        )
    });
    let status = child
        .wait()
        .map_err(|e| Error::io("cannot wait for git fast-import", e))?;
    let failed = || {
        Error::git(
            "cannot write the git-annex branch",
            command.failed(status, &err),
        )
    };
    let produced = match produced {
        Ok(None) => return Ok(None),
        Ok(Some(produced)) => produced,
        // A write error means fast-import died; its exit status says why.
        Err(_) if !status.success() => return Err(failed()),
        Err(e) => return Err(Error::io("cannot write to git fast-import", e)),
    };
    if !status.success() {
        return Err(failed());
    }
    let marks: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if marks
        .iter()
        .any(|m| m.len() < 40 || !m.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::git(
            "cannot write the git-annex branch",
            command.protocol(format!(
                "unexpected output {:?}",
                String::from_utf8_lossy(&out)
            )),
        ));
    }
    Ok(Some((marks, produced)))
}

/// Branch path → blob id of every `.log.met` at `head`.
fn list_tree(repo: &Repo, head: &str) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    let listing = repo.git_output(&["ls-tree", "-r", "-z", "--full-tree", head])?;
    let mut tree = HashMap::new();
    for record in listing.split(|&b| b == 0) {
        let Some(tab) = record.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let path = &record[tab + 1..];
        if !path.ends_with(b".log.met") {
            continue;
        }
        if let Some(oid) = record[..tab].rsplit(|&b| b == b' ').next() {
            tree.insert(path.to_vec(), oid.to_vec());
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_names_map_back_to_branch_paths() {
        assert_eq!(
            branch_path_of(b"50c_030_SHA256E-s6--x.mp3.log.met"),
            b"50c/030/SHA256E-s6--x.mp3.log.met"
        );
        assert_eq!(
            branch_path_of(b"cb4_be7_WORM-s0-m0--a__b.log.met"),
            b"cb4/be7/WORM-s0-m0--a_b.log.met"
        );
        assert_eq!(branch_path_of(b"uuid.log"), b"uuid.log");
        assert_eq!(branch_path_of(b"a_"), b"a");
    }

    /// The descent finds exactly what `ls-tree` lists, and nothing where there is nothing.
    #[test]
    fn descent_and_listing_agree() {
        use crate::annex::sample;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        sample::init(&dir).unwrap();
        let files: Vec<(std::path::PathBuf, Vec<u8>)> = (0..5)
            .map(|i| (format!("f{i}.mp3").into(), format!("{i}").into_bytes()))
            .collect();
        let refs: Vec<(&Path, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_path(), c.as_slice()))
            .collect();
        sample::add_files(&dir, &refs).unwrap();
        for i in 0..3 {
            sample::git(
                &dir,
                &["annex", "metadata", "-s", "rating=5", &format!("f{i}.mp3")],
            )
            .unwrap();
        }
        let repo = Repo::discover(&dir).unwrap();
        let head = branch::branch_head(&repo).unwrap().unwrap();
        let listing = list_tree(&repo, &head).unwrap();
        let mut paths: Vec<String> = listing
            .keys()
            .map(|p| String::from_utf8(p.clone()).unwrap())
            .collect();
        assert!(paths.iter().filter(|p| p.ends_with(".log.met")).count() == 3);
        paths.sort();
        paths.push("000/000/SHA256E-s1--absent.mp3.log.met".into());
        paths.push(format!("{}/nothing.log.met", &paths[0][..3]));
        paths.push("uuid.log/below".into());
        let wanted: Vec<&str> = paths.iter().map(String::as_str).collect();
        let mut cat = CatFile::start(&repo).unwrap();
        let found = tree::blob_ids_by_descent(&mut cat, &head, &wanted).unwrap();
        cat.finish().unwrap();
        let absent = vec![b'0'; head.len()];
        for (path, id) in paths.iter().zip(&found) {
            let expected = listing.get(path.as_bytes()).unwrap_or(&absent);
            assert_eq!(id, expected, "{path}");
        }
        assert_eq!(found.iter().filter(|id| **id == absent).count(), 3);
    }

    #[test]
    fn paths_are_quoted_for_fast_import() {
        let mut s = Vec::new();
        modify(&mut s, b"a/\"b\\\n\xc3\xa9", b"x");
        assert_eq!(
            s,
            b"M 100644 inline \"a/\\\"b\\\\\\012\\303\\251\"\ndata 1\nx\n".to_vec()
        );
    }
}
