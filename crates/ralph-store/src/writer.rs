//! The one writer of a process: a thread that owns the state database (and the machine-wide
//! ledger) and commits what every loop sends it, in order, several commits at a time.
//!
//! Many loops run in one process (the stories mode). Separate connections would each take
//! SQLite's write lock in turn and, past the busy timeout, fail with "database is locked"; one
//! connection behind a mutex would make every loop wait for every other loop's fsync, on the
//! thread that also reads the agents' output. Here the loops send their writes to one thread
//! and await the answer: a loop waiting for its commit leaves the runtime free for the others,
//! and writes that arrive while a commit is in progress are committed together, with one fsync
//! (group commit). Each write keeps its own result (a savepoint each), and a write is durable
//! when its answer arrives, as before.
//!
//! Reads (resuming a run, a test's checks) run on the same thread, after every write sent
//! before them, so they always see what the loop itself wrote.

use std::path::PathBuf;
use std::sync::mpsc;

use crate::records::{EventRecord, IterationRecord, RunRecord, SideCall};
use crate::stories;
use crate::story_records::{AttemptRecord, GateResult, PlanRunRecord, QueueEntry, StoryRecord};
use crate::{Ledger, LedgerEntry, Store, StoreError};

/// Most jobs taken into one batch: bounds how long one answer can wait for others.
const MAX_BATCH: usize = 256;

/// A write, owned so it can travel to the writer thread.
#[derive(Debug, Clone)]
pub enum Write {
    /// [`Store::save_run`].
    SaveRun {
        run: RunRecord,
        events: Vec<EventRecord>,
        durable: bool,
    },
    /// [`Store::iteration_started`].
    IterationStarted {
        run: RunRecord,
        events: Vec<EventRecord>,
    },
    /// [`Store::commit_iteration`]: durable.
    CommitIteration {
        run: RunRecord,
        iteration: Box<IterationRecord>,
        events: Vec<EventRecord>,
    },
    /// [`Store::append_events`].
    AppendEvents { events: Vec<EventRecord> },
    /// [`Store::commit_side_call`]: durable.
    CommitSideCall {
        run: RunRecord,
        call: SideCall,
        events: Vec<EventRecord>,
    },
    /// [`Ledger::record`], in the machine-wide ledger: durable. Entries of one batch are
    /// written before its state-database writes (an iteration's ledger entry before its commit).
    Ledger(LedgerEntry),
    /// A plan run's row, with stories (a new plan run's, all `pending`; or none) and events:
    /// durable. Stories are checked as in [`Write::SaveStory`].
    SavePlanRun {
        plan_run: PlanRunRecord,
        stories: Vec<StoryRecord>,
        events: Vec<EventRecord>,
    },
    /// A story's row and its events: durable. A change of a stored story's state is refused
    /// without a `story.state` event whose payload's `story_id` is the story's.
    SaveStory {
        story: StoryRecord,
        events: Vec<EventRecord>,
    },
    /// A new attempt (its loop run's id) and the story's row (`running`, attempts counted) in
    /// one transaction: durable.
    StartAttempt {
        attempt: AttemptRecord,
        story: StoryRecord,
        events: Vec<EventRecord>,
    },
    /// An attempt's end (`finished_at`, `outcome`), with the story's new row if it changed:
    /// durable.
    FinishAttempt {
        attempt: AttemptRecord,
        story: Option<StoryRecord>,
        events: Vec<EventRecord>,
    },
    /// A merge-queue entry (new or changed) and the stories whose state changes with it
    /// (`queued`, `merging`, `conflicted`, ...): durable.
    SaveQueueEntry {
        entry: QueueEntry,
        stories: Vec<StoryRecord>,
        events: Vec<EventRecord>,
    },
    /// The entry `landed` and its stories — exactly those of `entry.story_ids` — `merged`, in
    /// one transaction, or nothing: durable. Sent after the integration branch moved; on resume
    /// an entry `passed` whose candidate is the integration tip is landed again.
    Land {
        entry: QueueEntry,
        stories: Vec<StoryRecord>,
        events: Vec<EventRecord>,
    },
    /// A gate's result by (tree, gate, command hash), replacing an older one: durable.
    RecordGateResult { result: GateResult },
}

impl Write {
    fn durable(&self) -> bool {
        match self {
            Write::SaveRun { durable, .. } => *durable,
            Write::CommitIteration { .. }
            | Write::CommitSideCall { .. }
            | Write::Ledger(_)
            | Write::SavePlanRun { .. }
            | Write::SaveStory { .. }
            | Write::StartAttempt { .. }
            | Write::FinishAttempt { .. }
            | Write::SaveQueueEntry { .. }
            | Write::Land { .. }
            | Write::RecordGateResult { .. } => true,
            Write::IterationStarted { .. } | Write::AppendEvents { .. } => false,
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<(), StoreError>>;
type ReadJob = Box<dyn FnOnce(&mut Store, Result<Option<&Ledger>, String>) + Send>;

enum Job {
    Write(Box<Write>, Option<Reply>),
    Read(ReadJob),
}

/// A handle to the writer thread; clones share it. The thread ends when the last handle is
/// dropped, after finishing what was sent.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer(..)")
    }
}

/// The writer thread is gone (it panicked, or the process is ending).
fn gone() -> StoreError {
    StoreError::Writer("the state database writer has stopped".into())
}

impl Writer {
    /// Start the writer thread with the state database and, if known, where the ledger is (it
    /// is opened on the first write or read that needs it).
    pub fn start(store: Store, ledger: Option<PathBuf>) -> Writer {
        let (tx, rx) = mpsc::channel();
        // Without a thread the receiver is dropped: every write is answered with `gone`, and
        // the run stops with that error rather than losing writes.
        let _ = std::thread::Builder::new()
            .name("ralph-store".into())
            .spawn(move || run(store, ledger, rx));
        Writer { tx }
    }

    /// Send `write` and wait until it is committed (durably, when the write is durable).
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job::Write(Box::new(write), Some(reply)))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Send `write` without waiting (a run's start, an iteration's start, a warning): it is
    /// committed in order with the others, and if it fails, the next write that is waited for
    /// reports that failure instead of its own success. The loop's hot path saves a thread round
    /// trip per write this way, and no failure goes unseen.
    pub fn post(&self, write: Write) {
        let _ = self.tx.send(Job::Write(Box::new(write), None));
    }

    /// Run `f` on the writer thread, after every write sent before it, and wait for its result
    /// (blocking the calling thread: for start-up and tests, not for the loop's hot path).
    pub fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = mpsc::channel();
        let job: ReadJob = Box::new(move |store, _| {
            let _ = reply.send(f(store));
        });
        self.tx.send(Job::Read(job)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// Run `f` on the writer thread with the store to itself, after every write sent before
    /// it, and await its result: watching and restoring the database's own files
    /// ([`Store::mark_files`], [`Store::check_files`]).
    pub async fn exclusive<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |store, _| {
            let _ = reply.send(f(store));
        });
        self.tx.send(Job::Read(job)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Run `f` on the ledger (on the writer thread) and await its result: `Ok(None)` when no
    /// ledger location is known, `Err` when it cannot be opened or read.
    pub async fn read_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Option<T>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |_, ledger| {
            let answer = match ledger {
                Ok(Some(l)) => f(l).map(Some).map_err(|e| e.to_string()),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            let _ = reply.send(answer);
        });
        self.tx
            .send(Job::Read(job))
            .map_err(|_| gone().to_string())?;
        answer.await.map_err(|_| gone().to_string())?
    }
}

/// The ledger, opened on first use; a failed open is remembered and answered to every use.
struct LazyLedger {
    path: Option<PathBuf>,
    opened: Option<Result<Ledger, String>>,
}

impl LazyLedger {
    fn get(&mut self) -> Result<Option<&Ledger>, String> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let opened = self
            .opened
            .get_or_insert_with(|| Ledger::open(path).map_err(|e| e.to_string()));
        match opened {
            Ok(l) => Ok(Some(l)),
            Err(e) => Err(e.clone()),
        }
    }
}

fn run(mut store: Store, ledger: Option<PathBuf>, rx: mpsc::Receiver<Job>) {
    let mut ledger = LazyLedger {
        path: ledger,
        opened: None,
    };
    // The failure of a posted write, for the next write that is waited for.
    let mut pending: Option<StoreError> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut writes: Vec<(Write, Option<Reply>)> = Vec::new();
        for job in batch {
            match job {
                Job::Write(w, reply) => writes.push((*w, reply)),
                Job::Read(f) => {
                    // Reads see every write sent before them.
                    let writes = std::mem::take(&mut writes);
                    commit(&mut store, &mut ledger, writes, &mut pending);
                    let l = ledger.get();
                    f(&mut store, l);
                }
            }
        }
        commit(&mut store, &mut ledger, writes, &mut pending);
    }
}

/// Commit a run of writes: the ledger's in one transaction, then the state database's in one
/// transaction, each write in its own savepoint so one failure does not fail the others.
fn commit(
    store: &mut Store,
    ledger: &mut LazyLedger,
    writes: Vec<(Write, Option<Reply>)>,
    pending: &mut Option<StoreError>,
) {
    if writes.is_empty() {
        return;
    }
    let (entries, state): (Vec<_>, Vec<_>) = writes
        .into_iter()
        .partition(|(w, _)| matches!(w, Write::Ledger(_)));
    if !entries.is_empty() {
        let result = match ledger.get() {
            Ok(Some(l)) => {
                let all: Vec<&LedgerEntry> = entries
                    .iter()
                    .filter_map(|(w, _)| match w {
                        Write::Ledger(e) => Some(e),
                        _ => None,
                    })
                    .collect();
                l.record_all(&all).map_err(|e| e.to_string())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        for (_, reply) in entries {
            if let Some(reply) = reply {
                let _ = reply.send(result.clone().map_err(ledger_error));
            }
        }
    }
    if state.is_empty() {
        return;
    }
    let durable = state.iter().any(|(w, _)| w.durable());
    let ops: Vec<&Write> = state.iter().map(|(w, _)| w).collect();
    let results = store.apply_batch(&ops, durable);
    for ((_, reply), result) in state.into_iter().zip(results) {
        match (reply, result) {
            (None, Err(e)) => {
                pending.get_or_insert(e);
            }
            (None, Ok(())) => {}
            (Some(reply), Ok(())) => {
                let _ = reply.send(pending.take().map_or(Ok(()), Err));
            }
            (Some(reply), Err(e)) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

fn ledger_error(message: String) -> StoreError {
    StoreError::Writer(format!("the machine-wide ledger: {message}"))
}

impl Store {
    /// Apply one write in its own transaction on this connection, without the writer thread
    /// (one-shot commands and tests); durable when the write is. Not for a process whose
    /// loops write through a [`Writer`]. A [`Write::Ledger`] entry is not written here.
    pub fn commit(&mut self, write: &Write) -> Result<(), StoreError> {
        let durable = write.durable();
        self.write(durable, "commit a write", |tx| apply(tx, write))
    }

    /// Apply `ops` in one transaction (committed with `synchronous=FULL` when `durable`), each in
    /// a savepoint: a failing write is rolled back alone and answered with its error. If the
    /// commit itself fails, every write is answered with that.
    pub(crate) fn apply_batch(
        &mut self,
        ops: &[&Write],
        durable: bool,
    ) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(ops.len());
        let committed = self.write(durable, "commit the batch", |tx| {
            for op in ops {
                let r = tx
                    .execute_batch("SAVEPOINT w")
                    .map_err(crate::sql("begin a savepoint"))
                    .and_then(|()| apply(tx, op));
                let end = if r.is_ok() {
                    "RELEASE w"
                } else {
                    "ROLLBACK TO w; RELEASE w"
                };
                let ended = tx.execute_batch(end).map_err(crate::sql("end a savepoint"));
                results.push(r.and(ended));
            }
            Ok(())
        });
        match committed {
            Ok(()) => results,
            Err(e) => {
                let text = e.to_string();
                ops.iter()
                    .map(|_| Err(StoreError::Writer(text.clone())))
                    .collect()
            }
        }
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &Write) -> Result<(), StoreError> {
    match op {
        Write::SaveRun { run, events, .. } | Write::IterationStarted { run, events } => {
            run.upsert(tx)?;
            crate::insert_events(tx, events)
        }
        Write::CommitIteration {
            run,
            iteration,
            events,
        } => {
            iteration.insert(tx)?;
            run.upsert(tx)?;
            crate::insert_events(tx, events)
        }
        Write::AppendEvents { events } => crate::insert_events(tx, events),
        Write::CommitSideCall { run, call, events } => {
            crate::insert_side_call(tx, &run.id, call)?;
            run.upsert(tx)?;
            crate::insert_events(tx, events)
        }
        // Partitioned out before: never reaches the state database.
        Write::Ledger(_) => Ok(()),
        Write::SavePlanRun {
            plan_run,
            stories: s,
            events,
        } => stories::save_plan_run(tx, plan_run, s, events),
        Write::SaveStory { story, events } => {
            stories::save_story(tx, story, events)?;
            crate::insert_events(tx, events)
        }
        Write::StartAttempt {
            attempt,
            story,
            events,
        } => stories::save_attempt(tx, attempt, Some(story), events),
        Write::FinishAttempt {
            attempt,
            story,
            events,
        } => stories::save_attempt(tx, attempt, story.as_ref(), events),
        Write::SaveQueueEntry {
            entry,
            stories: s,
            events,
        } => stories::save_queue_entry(tx, entry, s, events),
        Write::Land {
            entry,
            stories: s,
            events,
        } => stories::land(tx, entry, s, events),
        Write::RecordGateResult { result } => result.upsert(tx),
    }
}
