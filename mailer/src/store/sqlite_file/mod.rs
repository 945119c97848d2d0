//! The delivery store's writes on SQLite, in shared transactions (group commit): on a file,
//! and on an in-memory database (which shares its cache with the pool's connection), with the
//! statements every backend runs (`store::statements`).
//!
//! Every mail costs three writes: the insert that makes `accepted` true, the claim before the
//! SMTP handoff, and the outcome after it. One task owns an rusqlite connection (the same
//! SQLite library sqlx links). It takes every write waiting in its channel, lets the runtime
//! turn [`GATHER_TURNS`] times so that writes already on their way join in, runs them all in
//! one transaction ([`batch`]), commits once, and answers each caller. The guarantees are
//! those of one write at a time: an insert is answered only after its commit, a claim is
//! committed before its mail is handed over, and an outcome is acknowledged only once
//! written.
//!
//! Every answer follows a commit that is durable across an OS crash or a power loss. The
//! commit itself does not wait for the disk (`synchronous=NORMAL`: it writes its frames to
//! the WAL); a thread of its own then syncs the WAL and answers the batches the sync covers
//! ([`syncs`]), while the writer goes on with the next batch. So the writes that come in
//! while one batch syncs are written meanwhile, and every batch committed during a sync
//! shares the next. Since nothing but that thread waits for the disk, the transaction runs
//! on the runtime's thread: a writer thread of its own added a sleep and a wake-up to every
//! batch, which showed as more context switches per mail, a longer wait per request and a
//! slower drain (docs/BENCHMARKS.md). Two waits stay off the runtime: when the pool's
//! connection holds the write lock, the batch waits for it on a blocking thread; and a third
//! thread copies the WAL back into the database ([`checkpoints`]).
//!
//! A checkpoint that runs beside the writer copies only the frames committed before it
//! began, and SQLite starts the WAL over only when a write finds every frame copied: under a
//! load that never pauses, the file would grow without end. So past [`WAL_RESTART_FRAMES`]
//! the writer waits for a checkpoint before it writes again; that one copies everything,
//! and the next commit writes from the start of the file.
//!
//! Reads, the schema and putting back abandoned claims stay on the sea-orm pool; WAL mode
//! lets its reads run beside this writer. In memory there is no WAL and nothing to sync:
//! a read waits for the writer's commit, and the checkpoints are left out. There a lock is
//! waited for with SQLite's unlock notification, which blocks: every in-memory batch runs
//! on a blocking thread.

mod batch;
mod checkpoints;
mod connection;
mod operations;
mod run;
mod syncs;

pub use batch::WriteCounters;
pub(crate) use connection::Location;

use crate::error::MailError;
use crate::store::rows::{Claimed, Cursors, Finished, Inserted, Operated, Operation};
use crate::store::statements;
use crate::store::suppression_key::SuppressionKeys;
use batch::{Attempt, Committed, Op, Writer};
use checkpoints::Checkpoints;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use run::query;
use syncs::Syncs;
use tokio::sync::{mpsc, oneshot};

/// Writes waiting beyond this make the callers wait before queueing more.
const QUEUE: usize = 8192;
/// The most writes in one transaction.
const MAX_BATCH: usize = 1024;
/// How many times the writer lets the runtime run other tasks before it writes what it has:
/// each turn lets requests already read from their sockets join the batch.
const GATHER_TURNS: usize = 3;
/// Batches written between two checkpoints: about 1,000 WAL pages under load, SQLite's own
/// default interval.
const CHECKPOINT_EVERY: u32 = 64;
/// Frames in the WAL (of 4 KiB pages) past which the writer pauses for a checkpoint, so that
/// the log starts over.
const WAL_RESTART_FRAMES: u32 = 4096;

/// The handle to the writer task; cheap to clone. The task, and its checkpoint and sync
/// threads, end once every handle is dropped.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    ops: mpsc::Sender<Op>,
}

impl SqliteWriter {
    /// Starts the writer of the SQLite database at `location` as a task of the runtime. Call
    /// it after the schema is in place, inside the runtime.
    pub(crate) fn start(
        location: &Location,
        counters: WriteCounters,
        keys: SuppressionKeys,
    ) -> Result<Self, MailError> {
        let connection = connection::open(location)
            .map_err(|e| MailError::Write(format!("could not open {location} for writing: {e}")))?;
        // This writer is the database's only one, so it numbers changes from the last stored.
        let last_cursor: i64 = query(&connection, &statements::last_cursor(), |row| row.get(0))
            .map_err(|e| MailError::Write(format!("could not read the last cursor: {e}")))?
            .into_iter()
            .next()
            .unwrap_or(0);
        // An in-memory database has no log to copy or sync.
        let disk = match location {
            Location::File(path) => Some((
                Checkpoints::start(path).map_err(MailError::Write)?,
                Syncs::start(path, counters.clone()).map_err(MailError::Write)?,
            )),
            Location::Memory(_) => None,
        };
        let writer = Writer::new(connection, counters, keys, last_cursor);
        let (ops, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx, disk));
        Ok(Self { ops })
    }

    /// Stores `request` unless its id is stored already.
    pub(crate) async fn insert(
        &self,
        request: MailRequest,
        sender: Option<String>,
    ) -> Result<Inserted, MailError> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Insert(request, sender, reply), answer).await
    }

    /// Claims those of `ids` that are due at `now` (see `Store::claim_due`).
    pub(crate) async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, MailError> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Claim(ids.to_vec(), now, reply), answer).await
    }

    /// Records `outcomes`.
    pub(crate) async fn finish(&self, outcomes: Vec<Finished>) -> Result<Cursors, MailError> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Finish(outcomes, reply), answer).await
    }

    /// Makes one of an operator's writes.
    pub(crate) async fn operate(&self, operation: Operation) -> Result<Operated, MailError> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Operate(operation, reply), answer).await
    }

    async fn send<T>(
        &self,
        op: Op,
        answer: oneshot::Receiver<Result<T, MailError>>,
    ) -> Result<T, MailError> {
        self.ops
            .send(op)
            .await
            .map_err(|_| MailError::ShuttingDown)?;
        answer.await.map_err(|_| MailError::ShuttingDown)?
    }
}

/// The writer task: takes every waiting write, lets the runtime turn so that those on their
/// way join, writes them in one transaction, hands the batch to the sync thread, and starts
/// over. It waits for the disk only when the log must start over (a checkpoint); the
/// runtime's thread never does.
async fn run(mut writer: Writer, mut rx: mpsc::Receiver<Op>, disk: Option<(Checkpoints, Syncs)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut batches = 0u32;
    let mut last_frames = 0u32;
    // Set by a checkpoint the writer waited for, cleared once the log has started over. A
    // reader on an older snapshot keeps the checkpoint from copying its frames, and the log
    // then goes on growing: until it starts over, the writer waits only every
    // `CHECKPOINT_EVERY` batches, not after each one.
    let mut restart_pending = false;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for _ in 0..GATHER_TURNS {
            tokio::task::yield_now().await;
            take_waiting(&mut rx, &mut batch);
        }
        // In memory a lock is waited for by blocking (SQLite's unlock notification), so
        // each batch goes where it may block.
        let attempt = match disk {
            Some(_) => writer.write(&mut batch),
            None => Attempt::Locked,
        };
        let (frames, committed) = match attempt {
            Attempt::Done(frames, committed) => (frames, committed),
            Attempt::Locked => match write_on_blocking_thread(writer, batch).await {
                Some((w, b, frames, committed)) => {
                    (writer, batch) = (w, b);
                    (frames, committed)
                }
                // The runtime is shutting down; the callers of the batch hear it was not
                // written (their answer channels are dropped).
                None => return,
            },
        };
        // An in-memory database has nothing to sync and no log to keep bounded.
        let Some((checkpoints, syncs)) = &disk else {
            committed.answer();
            continue;
        };
        syncs.answer_when_durable(committed);
        batches += 1;
        if frames < last_frames {
            restart_pending = false;
        }
        last_frames = frames;
        if frames >= WAL_RESTART_FRAMES && (!restart_pending || batches >= CHECKPOINT_EVERY) {
            batches = 0;
            restart_pending = true;
            writer.counters().checkpoint_waits.inc();
            checkpoints.wait().await;
        } else if batches >= CHECKPOINT_EVERY {
            batches = 0;
            checkpoints.ask();
        }
    }
}

/// Writes `batch` on a blocking thread, where it may wait for a lock the pool's connection
/// holds, and gives the writer and the emptied batch back with the frames in the WAL and the
/// batch's answers.
async fn write_on_blocking_thread(
    mut writer: Writer,
    mut batch: Vec<Op>,
) -> Option<(Writer, Vec<Op>, u32, Committed)> {
    tokio::task::spawn_blocking(move || {
        let (frames, committed) = writer.write_waiting(&mut batch);
        (writer, batch, frames, committed)
    })
    .await
    .ok()
}

/// Moves the writes waiting in `rx` into `batch`, up to [`MAX_BATCH`].
fn take_waiting(rx: &mut mpsc::Receiver<Op>, batch: &mut Vec<Op>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Inserted, SuppressionKeys, test_request};
    use std::time::Duration;

    /// A store on a new file in `dir`, with its counters.
    async fn file_store(dir: &std::path::Path) -> (crate::store::Store, WriteCounters) {
        let url = format!("sqlite://{}?mode=rwc", dir.join("mailer.db").display());
        let counters = WriteCounters::default();
        let keys = SuppressionKeys::new(&domain::Secret::new("a key for this test"));
        let store = crate::store::connect(&url, counters.clone(), keys, true)
            .await
            .expect("the store opens");
        (store, counters)
    }

    /// While another connection holds the write lock, a write waits for it on a blocking
    /// thread: the runtime (this test's only thread) goes on running its tasks, and the write
    /// is stored once the lock is released.
    #[tokio::test]
    async fn a_locked_database_is_waited_for_off_the_runtime() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (store, _) = file_store(dir.path()).await;
        let other = rusqlite::Connection::open(dir.path().join("mailer.db")).expect("a connection");
        other
            .execute_batch("BEGIN IMMEDIATE")
            .expect("the write lock");
        let insert = tokio::spawn({
            let store = store.clone();
            async move { store.insert(test_request("user0@example.com"), None).await }
        });
        // Were the writer waiting on the runtime's thread, this timer would fire only once
        // that wait had ended (after 10 s).
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the runtime's thread waited {:?} for the lock",
            started.elapsed()
        );
        assert!(!insert.is_finished(), "the write did not wait for the lock");
        other.execute_batch("COMMIT").expect("the lock released");
        let answer = tokio::time::timeout(Duration::from_secs(5), insert)
            .await
            .expect("the write ends once the lock is released")
            .expect("the task ends")
            .expect("stored");
        assert!(matches!(answer, Inserted::Stored(_)));
    }

    /// Every answer waits for a sync of the log that covers its commit: with 200 requests in
    /// flight, each answered request has been synced (no more answers than the syncs made
    /// could cover), and the syncs are shared (fewer than the requests). The writer's own
    /// commits do not wait for the disk (1 is NORMAL); the checkpoints' connection does.
    #[tokio::test]
    async fn answers_follow_shared_syncs_of_the_log() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (store, counters) = file_store(dir.path()).await;
        let inserts = (0..200).map(|n| {
            let store = store.clone();
            let syncs = counters.syncs.clone();
            async move {
                let answer = store
                    .insert(test_request(&format!("user{n}@example.com")), None)
                    .await
                    .expect("stored");
                assert!(matches!(answer, Inserted::Stored(_)));
                // Read when the answer came: the sync that covers it has been counted.
                syncs.get()
            }
        });
        let seen = futures_util::future::join_all(inserts).await;
        assert!(
            seen.iter().all(|&syncs| syncs >= 1),
            "an answer came before any sync"
        );
        let (syncs, commits) = (counters.syncs.get(), counters.commits.get());
        assert!(syncs <= commits, "{syncs} syncs for {commits} commits");
        assert!(
            syncs < 200,
            "{syncs} syncs for 200 requests: none was shared"
        );
        let writer = connection::open(&Location::File(dir.path().join("mailer.db")))
            .expect("a writer's connection");
        let synchronous: i64 = writer
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("the pragma");
        assert_eq!(synchronous, 1);
    }
}
