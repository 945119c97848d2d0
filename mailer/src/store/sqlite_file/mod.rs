//! The delivery store's writes on SQLite, in shared transactions (group commit): on a file,
//! and on an in-memory database (which shares its cache with the pool's connection), with the
//! statements every backend runs (`store::statements`).
//!
//! Every mail costs three writes: the insert that makes `accepted` true, the claim before the
//! SMTP handoff, and the outcome after it. One thread owns an rusqlite connection (the same
//! SQLite library sqlx links). It takes every write waiting in its channel, runs them all in
//! one transaction ([`batch`]), commits once, and answers each caller. The guarantees are
//! those of one write at a time: an insert is answered only after its commit, a claim is
//! committed before its mail is handed over, and an outcome is acknowledged only once
//! written.
//!
//! Every answer follows a commit that is durable across an OS crash or a power loss: a
//! thread of its own syncs the WAL and answers the batches the sync covers ([`syncs`]),
//! while the writer goes on with the next batch. So the writes that come in while one batch
//! syncs are written meanwhile, and every batch committed during a sync shares the next.
//! The writer is a thread of its own, not a task, since it waits for the disk and perhaps
//! for the lock of the pool's connection: the runtime goes on reading requests meanwhile,
//! and those form the next batch (a task handing each batch to the blocking pool would cost
//! two more thread hand-offs per batch). Once a write has come, it waits [`GATHER`] for
//! more before it commits, unless the writes already waiting make a batch of
//! [`ENOUGH_ROWS`]. A third thread copies the WAL back into the database ([`checkpoints`]).
//!
//! A checkpoint that runs beside the writer copies only the frames committed before it
//! began, and SQLite starts the WAL over only when a write finds every frame copied: under a
//! load that never pauses, the file would grow without end. So past [`WAL_RESTART_FRAMES`]
//! the writer waits for a checkpoint before it writes again; that one copies everything,
//! and the next commit writes from the start of the file.
//!
//! Reads, the schema and putting back abandoned claims stay on the sea-orm pool; WAL mode
//! lets its reads run beside this writer. In memory there is no WAL and nothing to sync:
//! a read waits for the writer's commit, and the checkpoints are left out.

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
use batch::{Op, write_batch};
use checkpoints::Checkpoints;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use run::query;
use rusqlite::Connection;
use syncs::Syncs;
use tokio::sync::{mpsc, oneshot};

/// Writes waiting beyond this make the callers wait before queueing more.
const QUEUE: usize = 8192;
/// The most writes in one transaction.
const MAX_BATCH: usize = 1024;
/// How long the writer waits, once a write has come, for those on their way before it
/// commits. Without it, a moderate load (the whole stack at 700 mails/s) commits nearly
/// every write alone, and both services spend 15 % more CPU per mail; under a heavy load
/// the batch is large anyway (docs/BENCHMARKS.md). It adds as much to a lone write's wait.
const GATHER: std::time::Duration = std::time::Duration::from_micros(300);
/// A batch that will write this many rows is written at once: the sync is shared widely
/// enough, and the writes waiting would only wait longer (docs/BENCHMARKS.md).
const ENOUGH_ROWS: usize = 16;
/// Batches written between two checkpoints: about 1,000 WAL pages under load, SQLite's own
/// default interval.
const CHECKPOINT_EVERY: u32 = 64;
/// Frames in the WAL (of 4 KiB pages) past which the writer pauses for a checkpoint, so that
/// the log starts over.
const WAL_RESTART_FRAMES: u32 = 4096;

/// The handle to the writer thread; cheap to clone. The thread, and its checkpoint thread, end
/// once every handle is dropped.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    ops: mpsc::Sender<Op>,
}

impl SqliteWriter {
    /// Starts the writer of the SQLite database at `location` on a thread of its own. Call it
    /// after the schema is in place.
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
        let (ops, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, rx, counters, keys, disk, last_cursor))
            .map_err(|e| {
                MailError::Write(format!("could not start the writer of {location}: {e}"))
            })?;
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

/// The writer thread: takes the first waiting write, then every write that arrived
/// meanwhile (those that came in while the last batch was written), writes them in one
/// transaction, hands the batch to the sync thread, and starts over. The thread never waits
/// on the runtime, the runtime never waits on the disk, and the writer waits on the disk
/// only for a checkpoint of a long log.
fn run(
    mut connection: Connection,
    mut rx: mpsc::Receiver<Op>,
    counters: WriteCounters,
    keys: SuppressionKeys,
    disk: Option<(Checkpoints, Syncs)>,
    mut last_cursor: i64,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut batches = 0u32;
    let mut last_frames = 0u32;
    // Set by a checkpoint the writer waited for, cleared once the log has started over. A
    // reader on an older snapshot keeps the checkpoint from copying its frames, and the log
    // then goes on growing: until it starts over, the writer waits only every
    // `CHECKPOINT_EVERY` batches, not after each one.
    let mut restart_pending = false;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        take_waiting(&mut rx, &mut batch);
        if rows_of(&batch) < ENOUGH_ROWS {
            std::thread::sleep(GATHER);
            take_waiting(&mut rx, &mut batch);
        }
        let (frames, committed) = write_batch(
            &mut connection,
            &mut batch,
            &counters,
            &keys,
            &mut last_cursor,
        );
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
            counters.checkpoint_waits.inc();
            checkpoints.wait();
        } else if batches >= CHECKPOINT_EVERY {
            batches = 0;
            checkpoints.ask();
        }
    }
}

/// The rows the writes of `batch` will write at most (a claim or an outcome of several mails
/// writes one row each).
fn rows_of(batch: &[Op]) -> usize {
    batch
        .iter()
        .map(|op| match op {
            Op::Claim(ids, ..) => ids.len(),
            Op::Finish(outcomes, _) => outcomes.len(),
            Op::Insert(..) | Op::Operate(..) => 1,
        })
        .sum()
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
    use crate::store::{Inserted, SuppressionKeys};

    /// Every answer waits for a sync of the log that covers its commit: with 200 requests in
    /// flight, each answered request has been synced (no more answers than the syncs made
    /// could cover), and the syncs are shared (fewer than the requests). The writer's own
    /// commits do not wait for the disk (1 is NORMAL); the checkpoints' connection does.
    #[tokio::test]
    async fn answers_follow_shared_syncs_of_the_log() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("mailer.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let counters = WriteCounters::default();
        let keys = SuppressionKeys::new(&domain::Secret::new("a key for this test"));
        let store = crate::store::connect(&url, counters.clone(), keys, true)
            .await
            .expect("the store opens");
        let inserts = (0..200).map(|n| {
            let store = store.clone();
            let syncs = counters.syncs.clone();
            async move {
                let request: MailRequest = serde_json::from_value(serde_json::json!({
                    "id": MailRequestId::new().to_string(),
                    "template": "welcome",
                    "locale": "en",
                    "to": {"email": format!("user{n}@example.com"), "name": "A"},
                    "vars": {},
                    "requested_at": "2026-12-07T10:00:00Z",
                }))
                .expect("a request");
                let answer = store.insert(request, None).await.expect("stored");
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
        let writer = connection::open(&Location::File(path)).expect("a writer's connection");
        let synchronous: i64 = writer
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("the pragma");
        assert_eq!(synchronous, 1);
    }
}
