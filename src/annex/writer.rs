//! Writing metadata through git-annex.
//!
//! Writers are long-running `git annex metadata --batch --json` processes started with
//! `annex.alwayscommit=false`, so nothing they write is committed by them: their changes
//! collect in git-annex's journal. After each chunk of requests has been answered, one short
//! git-annex command run with `annex.alwayscommit=true` commits the journal (see
//! [`branch::commit_journal`]). That gives exactly one git-annex branch commit per chunk without
//! `git annex merge` / `git annex sync`, which can touch the user's branches.

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::annex::Repo;
use crate::annex::{branch, metalog};
use crate::error::{Error, Result};
use crate::model::AnnexKey;

pub use crate::annex::request::WriteRequest;

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

#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Number of concurrent `git annex metadata --batch` processes (≥ 1).
    pub jobs: usize,
    /// Commit the git-annex branch after every this many requests (None: once at the end).
    pub batch_size: Option<usize>,
    /// Subject of the git-annex branch commit(s).
    pub commit_message: String,
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
}

/// Requests in flight per writer. Bounded so that cancelling stops within a fraction of a
/// second instead of after everything already queued in the pipe, while still keeping
/// git-annex busy (it answers one request every few milliseconds).
const WINDOW: usize = 128;

/// git-annex never packs the loose objects its commits create; above this many written keys
/// a `git gc --auto` is worth its (usually zero) cost.
const GC_THRESHOLD: usize = 300;

/// How much of a dead writer's stderr to quote in the failure message.
const STDERR_TAIL: usize = 1500;

/// Checks a field name the way git-annex does (ASCII subset: `[A-Za-z0-9][A-Za-z0-9_.-]*`,
/// and not a derived `lastchanged` name in any case, see [`metalog::is_reserved_name`]).
pub fn validate_field_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("empty field name".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!(
                "illegal field name {name:?}: must start with an ASCII letter or digit"
            ));
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
        return Err(format!(
            "illegal field name {name:?}: {c:?} is not allowed (only letters, digits, _ . -)"
        ));
    }
    if metalog::is_reserved_name(name) {
        return Err(format!(
            "illegal field name {name:?}: git-annex discards fields ending in \"lastchanged\""
        ));
    }
    Ok(())
}

/// Rejects keys git-annex's key parser would refuse: in batch mode that refusal ("Error in $:
/// mempty") kills the whole process. The accepted shape (measured on 10.20230126) is
/// `BACKEND-[sN-][mN-][SN-][CN-]-NAME`: a backend without `-`, then optional decimal size,
/// mtime, chunk size and chunk number in exactly that order, then `-` and any name (may be
/// empty). Control characters are refused too: a newline would split the request, and a NUL
/// makes git-annex fail the request in `git cat-file`.
fn validate_key(key: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("invalid git-annex key {key:?}: {why}"));
    if key.is_empty() {
        return bad("empty");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    let Some((backend, mut rest)) = key.split_once('-') else {
        return bad("no backend");
    };
    if backend.is_empty() {
        return bad("no backend");
    }
    let mut allowed = "smSC";
    loop {
        let Some(c) = rest.chars().next() else {
            return bad("no \"--\" before the name");
        };
        if c == '-' {
            return Ok(());
        }
        let Some(pos) = allowed.find(c) else {
            return bad("unknown or repeated field before \"--\"");
        };
        allowed = &allowed[pos + 1..];
        let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(1 + digits) != Some(&b'-') {
            return bad("a size/mtime/chunk field is not a decimal number");
        }
        rest = &rest[digits + 2..];
    }
}

/// Escapes every non-ASCII character as `\uXXXX`. git-annex decodes its batch input with the
/// locale's encoding: under a C/POSIX locale (cron, `env -i`, many service managers) raw UTF-8
/// makes it die with "Batch input parse failure: Cannot decode input". Escaped input is decoded
/// by the JSON parser itself and stored as proper UTF-8 whatever the locale (measured with
/// git-annex 10.20230126). Non-ASCII can only occur inside JSON strings, where escapes are valid.
fn ascii_json(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The request line for `req`, or why it must not be sent.
fn encode(req: &WriteRequest) -> std::result::Result<String, FailureKind> {
    encode_valid(req).map_err(FailureKind::Invalid)
}

fn encode_valid(req: &WriteRequest) -> std::result::Result<String, String> {
    validate_key(req.key.as_str())?;
    let mut folded = HashSet::new();
    for name in req.fields.keys() {
        validate_field_name(name)?;
        if !folded.insert(name.to_lowercase()) {
            return Err(format!(
                "field {name:?} is named twice (field names are case-insensitive)"
            ));
        }
    }
    let line = serde_json::json!({ "key": req.key.as_str(), "fields": &req.fields });
    Ok(ascii_json(&line.to_string()))
}

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
    requests: Vec<WriteRequest>,
    last: Option<&dyn Fn(&Tally) -> WriteRequest>,
    opts: &WriteOptions,
    progress: &(dyn Fn(usize) + Sync),
    cancel: &AtomicBool,
) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let mut items = Vec::with_capacity(requests.len() + 1);
    for req in requests {
        match encode(&req) {
            Ok(line) => items.push(Item { key: req.key, line }),
            Err(why) => report.failed.push((req.key, why)),
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

struct Item {
    key: AnnexKey,
    line: String,
}

#[derive(Clone, Debug)]
enum Outcome {
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

#[derive(serde::Deserialize)]
struct Reply {
    success: bool,
    #[serde(default, rename = "error-messages")]
    error_messages: Vec<String>,
}

fn parse_reply(line: &str) -> Outcome {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        return Outcome::Failed(FailureKind::NotAnnexed);
    }
    match serde_json::from_str::<Reply>(line) {
        Ok(Reply { success: true, .. }) => Outcome::Written,
        Ok(Reply { error_messages, .. }) => Outcome::Failed(FailureKind::Refused(
            error_messages
                .iter()
                .map(|m| m.trim())
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(_) => Outcome::Failed(FailureKind::UnexpectedReply(
            line.chars().take(200).collect(),
        )),
    }
}

/// What the threads of a chunk tell the coordinating thread.
enum Event {
    /// A reply line from the writer process with this id.
    Reply(u64, String),
    /// That process closed its stdout: it has exited or is about to.
    Eof(u64),
    /// The feeder of this slot stopped after sending this many requests; `broken` when the
    /// pipe failed (the process is gone) rather than the chunk being done or cancelled.
    Fed {
        slot: usize,
        sent: usize,
        broken: bool,
    },
}

struct Writer {
    /// Distinguishes a restarted process from the dead one it replaces, whose last events
    /// may still be queued.
    id: u64,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
}

impl Writer {
    /// Waits for the process to end and returns its exit status and the tail of its stderr.
    fn reap(mut self) -> FailureKind {
        drop(self.stdin.take());
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        };
        let tail = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        FailureKind::ProcessDied {
            status,
            stderr: tail.trim().to_string(),
        }
    }
}

struct Pool<'r> {
    repo: &'r Repo,
    slots: Vec<Option<Writer>>,
    next_id: u64,
    tx: Sender<Event>,
    rx: Receiver<Event>,
}

#[derive(Default)]
struct SlotProgress {
    sent: Option<usize>,
    got: usize,
    eof: bool,
    broken: bool,
}

impl SlotProgress {
    fn done(&self) -> bool {
        self.sent.is_some_and(|sent| self.eof || self.got == sent)
    }
}

impl<'r> Pool<'r> {
    fn new(repo: &'r Repo, jobs: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        Pool {
            repo,
            slots: (0..jobs).map(|_| None).collect(),
            next_id: 0,
            tx,
            rx,
        }
    }

    /// Starts a writer in every empty slot (at the start, and in place of one that died).
    fn ensure_running(&mut self) -> Result<()> {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_none() {
                self.slots[slot] = Some(self.spawn()?);
            }
        }
        Ok(())
    }

    fn spawn(&mut self) -> Result<Writer> {
        let mut child = self
            .repo
            .git()
            .args([
                "-c",
                "annex.alwayscommit=false",
                "annex",
                "metadata",
                "--batch",
                "--json",
                "--json-error-messages",
            ])
            .spawn(Stdio::piped(), Stdio::piped(), Stdio::piped())
            .map_err(|e| Error::git("cannot start writing metadata", e))?;
        let id = self.next_id;
        self.next_id += 1;
        let stdout = child.stdout.take().expect("stdout is piped");
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdout.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        if tx.send(Event::Reply(id, text)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Event::Eof(id));
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            let start = tail.len().saturating_sub(STDERR_TAIL);
            String::from_utf8_lossy(&tail[start..]).into_owned()
        });
        Ok(Writer {
            id,
            stdin: child.stdin.take(),
            child,
            stderr: Some(stderr),
        })
    }

    /// Runs `items` as one chunk on running writers (restarting dead ones).
    fn send(
        &mut self,
        items: &[Item],
        outcomes: &mut [Outcome],
        replies: &mut usize,
        progress: &(dyn Fn(usize) + Sync),
        cancel: &AtomicBool,
    ) -> Result<()> {
        if !items.is_empty() {
            self.ensure_running()?;
            self.run_chunk(items, outcomes, replies, progress, cancel);
        }
        Ok(())
    }

    /// Sends `items` (spread over the writers by key) and waits until every sent request is
    /// answered or its writer has died. Unanswered requests of a dead writer fail; requests
    /// left unsent because of `cancel` stay `Pending`.
    fn run_chunk(
        &mut self,
        items: &[Item],
        outcomes: &mut [Outcome],
        replies: &mut usize,
        progress: &(dyn Fn(usize) + Sync),
        cancel: &AtomicBool,
    ) {
        let jobs = self.slots.len();
        let mut assigned: Vec<Vec<usize>> = vec![Vec::new(); jobs];
        for (i, item) in items.iter().enumerate() {
            let mut h = DefaultHasher::new();
            item.key.hash(&mut h);
            assigned[(h.finish() % jobs as u64) as usize].push(i);
        }
        let mut state: Vec<SlotProgress> = (0..jobs).map(|_| SlotProgress::default()).collect();

        std::thread::scope(|scope| {
            let mut credits: Vec<Option<Sender<()>>> = (0..jobs).map(|_| None).collect();
            let mut feeders = Vec::new();
            for slot in 0..jobs {
                if assigned[slot].is_empty() {
                    state[slot].sent = Some(0);
                    continue;
                }
                // A writer whose pipe broke is reaped at the end of its chunk, so every
                // running writer still has its stdin.
                let writer = self.slots[slot].as_mut().expect("ensure_running");
                let stdin = writer.stdin.take().expect("running writer has stdin");
                let (credit_tx, credit_rx) = mpsc::channel();
                credits[slot] = Some(credit_tx);
                let lines: Vec<&str> = assigned[slot]
                    .iter()
                    .map(|&i| items[i].line.as_str())
                    .collect();
                let tx = self.tx.clone();
                feeders.push((
                    slot,
                    scope.spawn(move || feed(stdin, &lines, &credit_rx, cancel, &tx, slot)),
                ));
            }

            while !state.iter().all(SlotProgress::done) {
                let event = self.rx.recv().expect("the pool holds a sender");
                let slot_of = |id| {
                    self.slots
                        .iter()
                        .position(|w| w.as_ref().is_some_and(|w| w.id == id))
                };
                match event {
                    Event::Reply(id, line) => {
                        let Some(slot) = slot_of(id) else { continue };
                        let s = &mut state[slot];
                        let Some(&i) = assigned[slot].get(s.got) else {
                            continue;
                        };
                        outcomes[i] = parse_reply(&line);
                        s.got += 1;
                        *replies += 1;
                        progress(*replies);
                        if let Some(credit) = &credits[slot] {
                            let _ = credit.send(());
                        }
                    }
                    Event::Eof(id) => {
                        let Some(slot) = slot_of(id) else { continue };
                        state[slot].eof = true;
                        // Unblocks a feeder waiting for credit that will never come.
                        credits[slot] = None;
                    }
                    Event::Fed { slot, sent, broken } => {
                        state[slot].sent = Some(sent);
                        state[slot].broken |= broken;
                    }
                }
            }
            drop(credits);
            for (slot, feeder) in feeders {
                let stdin = feeder.join().expect("feeder does not panic");
                if let Some(writer) = self.slots[slot].as_mut() {
                    writer.stdin = stdin;
                }
            }
        });

        for (slot, s) in state.iter().enumerate() {
            let answered = s.got;
            if !(s.eof || s.broken) {
                continue;
            }
            let why = self.slots[slot].take().expect("slot was running").reap();
            for &i in &assigned[slot][answered..] {
                outcomes[i] = Outcome::Failed(why.clone());
            }
        }
    }

    /// Closes every writer's stdin and waits for it to exit. With alwayscommit=false an exit
    /// commits nothing, so this is safe to do before or after the journal commit.
    fn shutdown(&mut self) {
        for writer in self.slots.iter_mut().filter_map(Option::take) {
            writer.reap();
        }
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Writes `lines` to a writer's stdin, at most [`WINDOW`] ahead of its replies, until done,
/// cancelled, or the pipe breaks. Gives stdin back unless it broke.
fn feed(
    mut stdin: ChildStdin,
    lines: &[&str],
    credits: &Receiver<()>,
    cancel: &AtomicBool,
    tx: &Sender<Event>,
    slot: usize,
) -> Option<ChildStdin> {
    let mut sent = 0;
    let mut broken = false;
    for line in lines {
        // A closed credit channel means the process is gone; stop like on a broken pipe.
        if sent >= WINDOW && credits.recv().is_err() {
            break;
        }
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        if stdin.write_all(&buf).is_err() {
            broken = true;
            break;
        }
        sent += 1;
    }
    let _ = tx.send(Event::Fed { slot, sent, broken });
    (!broken).then_some(stdin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_pure_ascii_json_with_the_same_meaning() {
        let original = r#"{"fields":{"crate":["Ünï ☃ 🎧","a\"b"]},"key":"K"}"#;
        let escaped = ascii_json(original);
        assert!(escaped.is_ascii(), "{escaped}");
        assert!(
            escaped.contains("\\ud83c\\udfa7"),
            "surrogate pair: {escaped}"
        );
        let a: serde_json::Value = serde_json::from_str(original).unwrap();
        let b: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn field_names() {
        for ok in [
            "rating",
            "1x",
            "x.y",
            "x-y",
            "x_y",
            "mixxx.rating",
            "0b6e-4f.time",
        ] {
            assert_eq!(validate_field_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "foo bar",
            "foo:bar",
            "_x",
            "-x",
            "x/y",
            "x+y",
            "x=y",
            "x@y",
            "x,y",
            "ü",
            "lastchanged",
            "rating-lastchanged",
            "fooLastChanged",
        ] {
            assert!(validate_field_name(bad).is_err(), "{bad}");
        }
    }

    /// Every case here was sent to git-annex 10.20230126: the accepted ones were answered,
    /// the rejected ones killed the batch process ("Error in $: mempty") or, for NUL, failed
    /// inside git-annex.
    #[test]
    fn keys_git_annex_can_parse() {
        for ok in [
            "WORM--x",
            "WORM-s0-m0--music-commander-sync-state",
            "SHA256E-s3--abc.mp3",
            "SHA256E--",
            "WORM-s3---x",
            "WORM-s3-m0-S5-C2--x",
            "WORM-S3--x",
            "WORM-s3-C1--x",
            "URL--http://e.com/a%20b",
            "Ü--x y",
            "WORM--a--b",
        ] {
            assert_eq!(validate_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "notakey",
            "-s3--x",
            "--x",
            "WORM-",
            "WORM-x",
            "WORM-s3",
            "WORM-s3-",
            "WORM-sX--x",
            "WORM-s-1--x",
            "WORM-s+3--x",
            "WORM-m1.5--x",
            "WORM-s3-m--x",
            "WORM-s3-s4--x",
            "WORM-s3-m12-C1-S2--x",
            "WORM-s3-q1--x",
            "A-B--x",
            "WORM--a\nb",
            "WORM--a\0b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies() {
        assert!(matches!(
            parse_reply("\n"),
            Outcome::Failed(FailureKind::NotAnnexed)
        ));
        assert!(matches!(
            parse_reply(r#"{"success":true,"error-messages":[]}"#),
            Outcome::Written
        ));
        assert!(matches!(
            parse_reply(r#"{"success":false,"error-messages":["git-annex: boom "]}"#),
            Outcome::Failed(FailureKind::Refused(m)) if m == "git-annex: boom"
        ));
        assert!(matches!(parse_reply("garbage"), Outcome::Failed(_)));
    }

    #[test]
    fn case_twins_are_refused() {
        let req = WriteRequest {
            key: AnnexKey::new("WORM--x"),
            fields: [("Rating".to_string(), vec![]), ("rating".into(), vec![])].into(),
        };
        assert!(encode(&req).is_err());
    }
}
