//! The delivery store's hot writes on an SQLite file, in shared transactions.
//!
//! Every mail costs three writes: the insert that makes `accepted` true, the claim before
//! the SMTP handoff, and the outcome after it. Through sqlx, each statement is handed to the
//! connection's thread and each returned row handed back, with a pool check-out around it,
//! and each statement commits on its own: measured with `perf`, about a quarter of the
//! mailer's CPU per mail went to those hand-offs and commits (docs/benchmarks/mailer.md).
//!
//! Here one task owns an rusqlite connection (the same SQLite library sqlx links). It takes
//! every write waiting in its channel, lets the runtime turn a few times so that writes
//! already on their way join in, runs them all in one transaction with prepared statements,
//! commits once, and answers each caller. Inserts from the doors, the dispatcher's claim and
//! the outcome writer's updates that arrive together share a commit, which is what group
//! commit means. The guarantees do not move: an insert is answered only after its commit, a
//! claim is committed before its mail is handed over, and an outcome is acknowledged only
//! once written.
//!
//! Every commit is durable across an OS crash or a power loss, not only a process crash:
//! `synchronous=FULL`, so a commit returns once the WAL is on disk, and every write of the
//! batch shares that one sync. Because a commit waits for the disk, the transaction
//! runs on a blocking thread: the runtime goes on reading requests meanwhile, and those
//! form the next batch. The same thread waits, with [`BUSY_TIMEOUT`], when another
//! connection holds the write lock. Copying the WAL back into the database (a checkpoint)
//! is done by a thread of its own, asked every [`CHECKPOINT_EVERY`] commits.
//!
//! A checkpoint that runs beside the writer copies the frames committed before it began, and
//! the writer has added more by the time it ends. SQLite starts the WAL over from its
//! beginning only when a write finds every frame copied, so under a load that never pauses
//! the file grew without end: 1.3 GB in 30 s of the benchmark. SQLite's WAL hook tells the
//! writer, after each commit, how many frames the log holds; past [`WAL_RESTART_FRAMES`],
//! the writer waits for a checkpoint before it writes again. That one copies everything, and
//! the following commit writes from the start of the file.
//!
//! Reads, the schema and the rare writes (putting back abandoned claims at start) stay on
//! the sea-orm pool; WAL mode lets its reads run beside this writer, and both sides wait for
//! each other's write lock with the same busy timeout. PostgreSQL and in-memory SQLite have
//! no such writer.

use super::batch_writer::StoreOutcome;
use super::batches::Claimed;
use super::records::{DeliveryStatus, to_millis};
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use prometheus_client::metrics::counter::Counter;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sea_orm::DbErr;
use std::cell::Cell;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writes waiting beyond this make the doors wait before queueing more.
const QUEUE: usize = 8192;
/// The most writes in one transaction.
const MAX_BATCH: usize = 1024;
/// How long a write waits for the database lock held by the pool's connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times the writer lets the runtime run other tasks before it writes what it
/// has: each turn lets requests already read from their sockets join the batch. Writing at
/// once gave 2.5 rows per commit; three turns give 18–20, against 10–11 for the thread the
/// writer used to have, with about 7 % less CPU per mail (docs/benchmarks/mailer.md).
const GATHER_TURNS: usize = 3;
/// Batches written between two checkpoints: about 1,000 WAL pages under load, SQLite's own
/// default interval.
const CHECKPOINT_EVERY: u32 = 64;
/// Frames in the WAL (of 4 KiB pages) past which the writer pauses for a checkpoint, so that
/// the log starts over: the file stays near 17 MB.
const WAL_RESTART_FRAMES: u32 = 4096;

/// The sentence of an `unavailable` answer when an insert could not be stored.
const NOT_STORED: &str =
    "the delivery store is not answering; the request was not stored, try again later";

/// What the writer counts: transactions committed, rows they wrote, and pauses for a
/// checkpoint. Clones share their values.
#[derive(Clone, Default)]
pub struct WriteCounters {
    /// Transactions committed.
    pub commits: Counter,
    /// Rows inserted, claimed or updated.
    pub rows: Counter,
    /// Times the writer waited for a checkpoint because the WAL had passed
    /// `WAL_RESTART_FRAMES`.
    pub checkpoint_waits: Counter,
}

/// One outcome to record (see [`SqliteWriter::finish_many`]).
struct Finish {
    ids: Vec<MailRequestId>,
    status: DeliveryStatus,
    attempts: u32,
    error: Option<String>,
    sent_at: Option<i64>,
    next_attempt_at: i64,
}

enum Op {
    Insert(MailRequest, oneshot::Sender<Result<StoreOutcome, String>>),
    Claim(
        Vec<MailRequestId>,
        i64,
        oneshot::Sender<Result<Vec<Claimed>, DbErr>>,
    ),
    Finish(Finish, oneshot::Sender<Result<(), DbErr>>),
}

/// The handle to the writer task; cheap to clone. The task, and its checkpoint thread, end
/// once every handle is dropped.
#[derive(Clone)]
pub struct SqliteWriter {
    ops: mpsc::Sender<Op>,
}

const INSERT: &str = "INSERT INTO mail_deliveries (id, template, locale, to_email, to_name, \
     vars, status, attempts, created_at, next_attempt_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7) ON CONFLICT (id) DO NOTHING";
/// The `+` keeps `status` and `next_attempt_at` off their indexes: the lookup is by id (see
/// `Store::claim_due`).
const CLAIM: &str = "UPDATE mail_deliveries SET status = 'sending' WHERE id = ?1 \
     AND +status IN ('queued', 'retrying') AND +next_attempt_at <= ?2 RETURNING attempts";
/// A sent mail keeps no `vars`: they are only needed to render it again.
const FINISH: &str = "UPDATE mail_deliveries SET status = ?1, attempts = ?2, last_error = ?3, \
     next_attempt_at = ?4, sent_at = coalesce(?5, sent_at), \
     vars = CASE WHEN ?1 = 'sent' THEN '{}' ELSE vars END WHERE id = ?6";

impl SqliteWriter {
    /// A writer for `url` when it names an SQLite file, else `None`. Call it after the
    /// schema is in place ([`super::connect`]), inside the Tokio runtime.
    pub fn for_database(url: &str, counters: WriteCounters) -> Result<Option<SqliteWriter>, DbErr> {
        let Some(path) = domain::config::sqlite_file(url) else {
            return Ok(None);
        };
        let connection = open(&path).map_err(|e| {
            DbErr::Custom(format!(
                "could not open {} for writing: {e}",
                path.display()
            ))
        })?;
        let checkpoints = start_checkpoints(&path)?;
        let (ops, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(connection, rx, counters, checkpoints));
        Ok(Some(SqliteWriter { ops }))
    }

    /// Stores `request` unless its id is stored already. The error is the one sentence of
    /// an `unavailable` answer.
    pub async fn insert(&self, request: MailRequest) -> Result<StoreOutcome, String> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Insert(request, reply))
            .await
            .map_err(|_| NOT_STORED.to_string())?;
        answer.await.map_err(|_| NOT_STORED.to_string())?
    }

    /// Claims those of `ids` that are due at `now` (see `Store::claim_due`).
    pub async fn claim_due(
        &self,
        ids: Vec<MailRequestId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Claim(ids, to_millis(now), reply)).await?;
        answer.await.map_err(|_| gone())?
    }

    /// Records one outcome for every id in `ids` (see `Store::finish_many`).
    pub async fn finish_many(
        &self,
        ids: &[MailRequestId],
        status: DeliveryStatus,
        attempts: u32,
        error: Option<&str>,
        at: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let finish = Finish {
            ids: ids.to_vec(),
            status,
            attempts,
            error: error.map(str::to_string),
            sent_at: (status == DeliveryStatus::Sent).then(|| to_millis(at)),
            next_attempt_at: to_millis(next_attempt_at),
        };
        let (reply, answer) = oneshot::channel();
        self.send(Op::Finish(finish, reply)).await?;
        answer.await.map_err(|_| gone())?
    }

    async fn send(&self, op: Op) -> Result<(), DbErr> {
        self.ops.send(op).await.map_err(|_| gone())
    }
}

fn gone() -> DbErr {
    DbErr::Custom("the SQLite writer has stopped".into())
}

/// A connection to the existing database file, used by one thread or task at a time.
fn connect(path: &std::path::Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The writer's connection. WAL is a property of the file (set by the pool's connection);
/// `synchronous` is per connection: FULL makes each commit wait until the WAL is on disk,
/// which is what an `accepted` answer or an AMQP ack relies on. Checkpoints are the
/// checkpoint thread's, so a commit does not also copy the log.
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let connection = connect(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
    )?;
    // After the pragma: `wal_autocheckpoint` installs a WAL hook of its own.
    connection.wal_hook(Some(note_wal_frames));
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

thread_local! {
    /// Frames in the WAL after the last commit made on this thread, from SQLite's WAL hook.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// SQLite's WAL hook: called inside each commit, on the committing thread.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// A request to the checkpoint thread, with the sender to tell when it is done if the
/// writer waits for it.
type CheckpointRequest = Option<oneshot::Sender<()>>;

/// Starts the thread that copies the WAL into the database when asked, and returns the
/// asking side. A passive checkpoint never waits for a lock and never holds up a writer.
fn start_checkpoints(path: &std::path::Path) -> Result<Checkpoints, DbErr> {
    let failed = |e: &dyn std::fmt::Display| {
        DbErr::Custom(format!(
            "could not start checkpoints for {}: {e}",
            path.display()
        ))
    };
    let connection = connect(path).map_err(|e| failed(&e))?;
    connection
        .execute_batch("PRAGMA synchronous = FULL;")
        .map_err(|e| failed(&e))?;
    let (ask, mut asked) = mpsc::channel::<CheckpointRequest>(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Some(done) = asked.blocking_recv() {
                let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(0)
                });
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not copy the SQLite WAL into the database");
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        })
        .map_err(|e| failed(&e))?;
    Ok(Checkpoints { ask })
}

/// The writer's side of the checkpoint thread.
struct Checkpoints {
    ask: mpsc::Sender<CheckpointRequest>,
}

impl Checkpoints {
    /// Asks for a checkpoint and goes on writing.
    fn ask(&self) {
        // Full: a checkpoint is already asked for, which covers this one.
        let _ = self.ask.try_send(None);
    }

    /// Asks for a checkpoint and waits for it to end: with no write meanwhile, it copies
    /// every frame, and the next commit starts the log over.
    async fn wait(&self) {
        let (done, ended) = oneshot::channel();
        if self.ask.send(Some(done)).await.is_ok() {
            let _ = ended.await;
        }
    }
}

async fn run(
    mut connection: Connection,
    mut rx: mpsc::Receiver<Op>,
    counters: WriteCounters,
    checkpoints: Checkpoints,
) {
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
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
        }
        let frames = match write_on_blocking_thread(connection, batch, counters.clone()).await {
            Some((c, b, frames)) => {
                (connection, batch) = (c, b);
                frames
            }
            // The runtime is shutting down; the callers of the batch hear it was not
            // written (their answer channels are dropped).
            None => return,
        };
        batches += 1;
        if frames < last_frames {
            restart_pending = false;
        }
        last_frames = frames;
        if frames >= WAL_RESTART_FRAMES && (!restart_pending || batches >= CHECKPOINT_EVERY) {
            batches = 0;
            restart_pending = true;
            counters.checkpoint_waits.inc();
            checkpoints.wait().await;
        } else if batches >= CHECKPOINT_EVERY {
            batches = 0;
            checkpoints.ask();
        }
    }
}

/// Writes `batch` on a blocking thread (the commit waits for the disk, and for the lock
/// another connection may hold), and gives the connection, the emptied batch and the
/// frames in the WAL back.
async fn write_on_blocking_thread(
    mut connection: Connection,
    mut batch: Vec<Op>,
    counters: WriteCounters,
) -> Option<(Connection, Vec<Op>, u32)> {
    tokio::task::spawn_blocking(move || {
        let frames = write_batch(&mut connection, &mut batch, &counters);
        (connection, batch, frames)
    })
    .await
    .ok()
}

/// What one write gave, to send once the transaction is committed.
enum Written {
    Insert(StoreOutcome),
    Claim(Vec<Claimed>),
    Finish,
}

/// Runs `batch` in one transaction and answers every write: with its result once committed,
/// or with the error when the transaction failed. Returns the frames in the WAL after it.
fn write_batch(connection: &mut Connection, batch: &mut Vec<Op>, counters: &WriteCounters) -> u32 {
    let mut written = Vec::with_capacity(batch.len());
    let mut rows = 0;
    // Another writer's commit on this thread may have set it; a failed commit leaves it 0.
    WAL_FRAMES.with(|f| f.set(0));
    let result = (|| -> rusqlite::Result<()> {
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for op in batch.iter() {
            let (w, n) = apply(&tx, op)?;
            written.push(w);
            rows += n;
        }
        tx.commit()
    })();
    // Read on the thread that committed, which is where the hook wrote it.
    let frames = WAL_FRAMES.with(Cell::get);
    match result {
        Ok(()) => {
            counters.commits.inc();
            counters.rows.inc_by(rows);
            for (op, w) in batch.drain(..).zip(written) {
                answer(op, Ok(w));
            }
        }
        Err(e) => {
            // Nothing of this batch is stored (the transaction rolled back when dropped):
            // every caller hears so, including those whose own statement had run.
            tracing::error!(error = %e, count = batch.len(), "could not write a batch to the delivery store");
            let error = format!("the delivery store could not be written: {e}");
            for op in batch.drain(..) {
                answer(op, Err(error.clone()));
            }
        }
    }
    frames
}

/// Sends `op`'s caller its result.
fn answer(op: Op, written: Result<Written, String>) {
    match op {
        Op::Insert(_, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Insert(outcome)) => Ok(outcome),
                _ => Err(NOT_STORED.to_string()),
            });
        }
        Op::Claim(_, _, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Claim(claimed)) => Ok(claimed),
                Ok(_) => Err(DbErr::Custom("a claim got another write's result".into())),
                Err(e) => Err(DbErr::Custom(e)),
            });
        }
        Op::Finish(_, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Finish) => Ok(()),
                Ok(_) => Err(DbErr::Custom("an update got another write's result".into())),
                Err(e) => Err(DbErr::Custom(e)),
            });
        }
    }
}

/// One write inside the open transaction, with the rows it wrote. An error aborts the
/// whole batch.
fn apply(tx: &rusqlite::Transaction<'_>, op: &Op) -> rusqlite::Result<(Written, u64)> {
    match op {
        Op::Insert(request, _) => {
            let vars = serde_json::to_string(&request.vars)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let now = to_millis(Utc::now());
            let changed = tx.prepare_cached(INSERT)?.execute(params![
                request.id.to_string(),
                request.template.as_str(),
                request.locale.as_str(),
                request.to.email.as_str(),
                request.to.name,
                vars,
                now,
            ])?;
            let outcome = if changed == 1 {
                StoreOutcome::Stored
            } else {
                StoreOutcome::Duplicate
            };
            Ok((Written::Insert(outcome), changed as u64))
        }
        Op::Claim(ids, now, _) => {
            let mut statement = tx.prepare_cached(CLAIM)?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let attempts: Option<i64> = statement
                    .query_row(params![id.to_string(), now], |row| row.get(0))
                    .optional()?;
                if let Some(attempts) = attempts {
                    claimed.push(Claimed {
                        id: *id,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                    });
                }
            }
            let n = claimed.len() as u64;
            Ok((Written::Claim(claimed), n))
        }
        Op::Finish(f, _) => {
            let mut statement = tx.prepare_cached(FINISH)?;
            let mut n = 0;
            for id in &f.ids {
                n += statement.execute(params![
                    f.status.as_db(),
                    i64::from(f.attempts),
                    f.error,
                    f.next_attempt_at,
                    f.sent_at,
                    id.to_string(),
                ])? as u64;
            }
            Ok((Written::Finish, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// 2 is FULL: a commit returns once the WAL is on disk, so an answer that followed it
    /// survives an OS crash.
    #[tokio::test]
    async fn the_writer_and_the_pool_sync_every_commit_to_disk() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("mailer.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = super::super::connect(&url).await.expect("the store opens");

        let writer = open(&path).expect("the writer's connection");
        let synchronous: i64 = writer
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("the pragma");
        assert_eq!(synchronous, 2, "the writer's connection");

        let row = pool
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await
            .expect("the pragma")
            .expect("a row");
        let synchronous: i64 = row.try_get_by_index(0).expect("a number");
        assert_eq!(synchronous, 2, "the pool's connection");
    }
}
