//! The writer processes: a pool of long-running batch writers, each fed by its own thread at
//! most a window ahead of its replies, restarted when one dies.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::annex::Repo;
use crate::error::{Error, Result};

use super::batch::parse_reply;
use super::{FailureKind, Item, Outcome};

/// Requests in flight per writer. Bounded so that cancelling stops within a fraction of a
/// second instead of after everything already queued in the pipe, while still keeping
/// git-annex busy (it answers one request every few milliseconds).
const WINDOW: usize = 128;

/// How much of a dead writer's stderr to quote in the failure message.
const STDERR_TAIL: usize = 1500;

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

pub(super) struct Pool<'r> {
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
    pub(super) fn new(repo: &'r Repo, jobs: usize) -> Self {
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
    pub(super) fn send(
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
    pub(super) fn shutdown(&mut self) {
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
