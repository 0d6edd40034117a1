//! Writing metadata: directly ([`direct`], the default: the logs git-annex would write,
//! committed with `git fast-import` under git-annex's journal lock), or through git-annex.
//!
//! git-annex writers are long-running `git annex metadata --batch --json` processes started with
//! `annex.alwayscommit=false`, so nothing they write is committed by them: their changes
//! collect in git-annex's journal. After each chunk of requests has been answered, one short
//! git-annex command run with `annex.alwayscommit=true` commits the journal (see
//! [`branch::commit_journal`]). That gives exactly one git-annex branch commit per chunk without
//! `git annex merge` / `git annex sync`, which can touch the user's branches.

mod batch;
mod direct;
mod journal_lock;
pub mod logmet;
mod pool;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::annex::Repo;
use crate::annex::branch;
use crate::error::Result;
use crate::model::AnnexKey;

pub use crate::annex::request::{Requests, WriteRequest};
pub use batch::validate_field_name;

use batch::encode;
use pool::Pool;

/// Why a request was not written. `Display` gives the text the report shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// git-annex answered with `success: false`; its messages, joined.
    Refused(String),
    /// Never sent: the key or a field name would break the batch protocol.
    Invalid(String),
    /// git-annex answered with an empty line: the key is not in the annex.
    NotAnnexed,
    /// git-annex answered something that is not a reply.
    UnexpectedReply(String),
    /// The writer process ended before answering.
    ProcessDied { status: String, stderr: String },
    /// Never sent because the run was cancelled.
    Interrupted,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Refused(m) if m.is_empty() => f.write_str("git-annex refused the change"),
            FailureKind::Refused(m) | FailureKind::Invalid(m) => f.write_str(m),
            FailureKind::NotAnnexed => f.write_str("not annexed"),
            FailureKind::UnexpectedReply(line) => {
                write!(f, "unexpected reply from git-annex: {line}")
            }
            FailureKind::ProcessDied { status, stderr } => {
                write!(f, "git-annex stopped ({status}): {stderr}")
            }
            FailureKind::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// What became of the last request (the sync record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RecordOutcome {
    /// No last request, or the run was interrupted or left requests unanswered.
    #[default]
    NotSent,
    Written,
    Failed(FailureKind),
}

/// The outcome of every request but the last, handed to the builder of the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub written: usize,
    pub failed: usize,
}

/// Who writes the git-annex branch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Writer {
    /// The logs git-annex would write, committed straight onto its branch (falls back to
    /// git-annex where its locks cannot be shared: `annex.pidlock`).
    #[default]
    Direct,
    /// `git annex metadata --batch` processes, then a journal commit by git-annex.
    GitAnnex,
}

#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub writer: Writer,
    /// Number of concurrent `git annex metadata --batch` processes (≥ 1; git-annex writer).
    pub jobs: usize,
    /// Commit the git-annex branch after every this many requests (None: once at the end).
    pub batch_size: Option<usize>,
    /// Subject of the git-annex branch commit(s).
    pub commit_message: String,
    /// The direct writer's clock, as git-annex's `GIT_ANNEX_VECTOR_CLOCK` (seconds); None:
    /// that variable, else the time. git-annex writers read the variable only.
    pub vector_clock: Option<String>,
}

#[derive(Debug, Default)]
pub struct WriteReport {
    /// Keys git-annex confirmed, in no particular order (the last request not included).
    pub written: Vec<AnnexKey>,
    /// Keys that were not written, with the reason (the last request not included).
    pub failed: Vec<(AnnexKey, FailureKind)>,
    /// The last request's fate.
    pub record: RecordOutcome,
    /// Commits added to the git-annex branch by this write.
    pub commits: usize,
    /// True when `cancel` stopped the run early.
    pub interrupted: bool,
    /// Set by the direct writer: the branch head it built on and the head it left, and
    /// whether it also committed journal files it found. None from git-annex's writer.
    pub moved: Option<BranchMove>,
}

/// How one direct write moved `refs/heads/git-annex` (`from == to`: nothing to commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchMove {
    pub from: String,
    pub to: String,
    pub journal_committed: bool,
}

/// git-annex never packs the loose objects its commits create; above this many written keys
/// a `git gc --auto` is worth its (usually zero) cost.
const GC_THRESHOLD: usize = 300;

/// Applies `requests`, then the request `last` builds from their tally, which lands in the
/// final commit (the sync record, with the real counts). Requests are validated first; an invalid one becomes a failure, never a dead
/// batch process. `progress` is called with the number of replies received so far.
/// When `cancel` becomes true, no new requests are sent; replies already due are collected
/// and committed.
///
/// Requests for the same key go to the same writer, in order. `last` is not written when the
/// run was interrupted, so an interrupted sync never records itself as complete. Errors are
/// reserved for repository-level trouble (git cannot be started, the journal cannot be
/// committed); everything per key is in the report.
pub fn write(
    repo: &Repo,
    requests: impl Requests,
    last: Option<&dyn Fn(&Tally) -> WriteRequest>,
    opts: &WriteOptions,
    progress: &(dyn Fn(usize) + Sync),
    cancel: &AtomicBool,
) -> Result<WriteReport> {
    if opts.writer == Writer::Direct && direct::unsupported(repo)?.is_none() {
        return direct::write(repo, &requests, last, opts, progress, cancel);
    }
    let mut report = WriteReport::default();
    let mut items = Vec::with_capacity(requests.len() + 1);
    for i in 0..requests.len() {
        let req = requests.get(i);
        match encode(&req) {
            Ok(line) => items.push(Item {
                key: req.key.clone(),
                line,
            }),
            Err(why) => report.failed.push((req.key.clone(), why)),
        }
    }
    let n_requests = items.len();
    if items.is_empty() && last.is_none() {
        return Ok(report);
    }

    let before = branch::branch_head(repo)?;
    branch::merge_other_annex_branches(repo)?;
    let chunk = opts.batch_size.unwrap_or(usize::MAX).max(1);
    let jobs = opts.jobs.max(1).min(chunk).min(items.len().max(1));
    let mut outcomes = vec![Outcome::Pending; items.len()];
    let mut pool = Pool::new(repo, jobs);
    let mut replies = 0;
    let mut start: usize = 0;
    while !cancel.load(Ordering::Relaxed) {
        let end = start.saturating_add(chunk).min(n_requests);
        let last_chunk = end == n_requests;
        let mut send = |range: std::ops::Range<usize>, outcomes: &mut [Outcome]| {
            pool.send(
                &items[range.clone()],
                &mut outcomes[range],
                &mut replies,
                progress,
                cancel,
            )
        };
        send(start..end, &mut outcomes)?;
        // `last` joins the final commit rather than costing one of its own, and is sent only
        // once every other request has been answered: with several writers, sending it
        // alongside could record a sync that a cancel then cut short.
        if last_chunk
            && !outcomes.iter().any(Outcome::is_pending)
            && let Some(last) = last
        {
            let mut tally = Tally {
                written: 0,
                failed: report.failed.len(),
            };
            for outcome in &outcomes {
                match outcome {
                    Outcome::Written => tally.written += 1,
                    _ => tally.failed += 1,
                }
            }
            let req = last(&tally);
            report.record = match encode(&req) {
                Err(why) => RecordOutcome::Failed(why),
                Ok(line) => {
                    let mut outcome = [Outcome::Pending];
                    pool.send(
                        &[Item { key: req.key, line }],
                        &mut outcome,
                        &mut replies,
                        progress,
                        cancel,
                    )?;
                    match outcome {
                        [Outcome::Written] => RecordOutcome::Written,
                        [Outcome::Failed(why)] => RecordOutcome::Failed(why),
                        [Outcome::Pending] => RecordOutcome::NotSent,
                    }
                }
            };
        }
        if last_chunk {
            // No writer may be alive while the last commit is made.
            pool.shutdown();
        }
        branch::commit_journal(repo, &opts.commit_message)?;
        if last_chunk {
            break;
        }
        start = end;
    }
    pool.shutdown();

    for (item, outcome) in items.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Written => report.written.push(item.key),
            Outcome::Failed(why) => report.failed.push((item.key, why)),
            Outcome::Pending => {
                report.interrupted = true;
                report.failed.push((item.key, FailureKind::Interrupted));
            }
        }
    }
    report.commits = branch::commits_since(repo, before.as_deref())?;
    if report.written.len() > GC_THRESHOLD {
        // Hygiene only: a failed gc must not turn a successful write into an error.
        let _ = repo.git().args(["gc", "--auto", "--quiet"]).output();
    }
    Ok(report)
}

pub(super) struct Item {
    key: AnnexKey,
    line: String,
}

#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// Not sent (cancelled), or not yet answered.
    Pending,
    Written,
    Failed(FailureKind),
}

impl Outcome {
    fn is_pending(&self) -> bool {
        matches!(self, Outcome::Pending)
    }
}
