//! One batch of the SQLite writer: every waiting write in one transaction with prepared
//! statements, one commit, then an answer to each caller.

use super::connection::BUSY_TIMEOUT;
use super::operations::{add_suppression, operate, suppression_reason, unbuilt};
use super::run::{execute_one, query_one};
use crate::error::MailError;
use crate::store::rows::{
    Claimed, Cursor, Cursors, DeliveryRecord, Finished, Inserted, Operated, Operation,
};
use crate::store::statements::{self, NewDelivery, Numbering};
use crate::store::suppression_key::SuppressionKeys;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use prometheus_client::metrics::counter::Counter;
use rusqlite::{Connection, TransactionBehavior};
use std::cell::Cell;
use tokio::sync::oneshot;

/// What the writer counts: transactions committed, rows they wrote, and pauses for a
/// checkpoint. Clones share their values.
#[derive(Clone, Default)]
pub struct WriteCounters {
    /// Transactions committed.
    pub commits: Counter,
    /// Rows inserted, claimed or updated.
    pub rows: Counter,
    /// Times the writer waited for a checkpoint because the WAL had grown past its limit.
    pub checkpoint_waits: Counter,
    /// Syncs of the WAL to disk, each shared by the commits made since the last.
    pub syncs: Counter,
}

/// One write a caller is waiting for.
pub(super) enum Op {
    Insert(
        MailRequest,
        Option<String>,
        oneshot::Sender<Result<Inserted, MailError>>,
    ),
    Claim(
        Vec<MailRequestId>,
        DateTime<Utc>,
        oneshot::Sender<Result<Vec<Claimed>, MailError>>,
    ),
    Finish(Vec<Finished>, oneshot::Sender<Result<Cursors, MailError>>),
    Operate(Operation, oneshot::Sender<Result<Operated, MailError>>),
}

thread_local! {
    /// Frames in the WAL after the last commit made on this thread, from SQLite's WAL hook.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// SQLite's WAL hook: called inside each commit, on the committing thread.
pub(super) fn note_wal_frames(
    _: &rusqlite::hooks::Wal,
    frames: std::ffi::c_int,
) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// What one write gave, to send once the transaction is committed.
enum Written {
    Insert {
        stored: bool,
        at: DateTime<Utc>,
        /// Why the recipient is suppressed, when it is.
        suppressed: Option<String>,
        cursor: Cursor,
    },
    Claim(Vec<Claimed>),
    Finish(Cursors),
    Operate(Operated),
}

/// A batch written: its writes and what each gave, to answer once the commit is on disk
/// ([`Committed::answer`]), or the error that rolled the batch back.
pub(super) struct Committed {
    ops: Vec<Op>,
    written: Result<Vec<Written>, String>,
}

impl Committed {
    /// Sends each caller its result.
    pub(super) fn answer(self) {
        match self.written {
            Ok(written) => {
                for (op, w) in self.ops.into_iter().zip(written) {
                    answer(op, Ok(w));
                }
            }
            Err(error) => fail_all(self.ops, &error),
        }
    }

    /// Sends each caller `error` instead (the commit could not be made durable).
    pub(super) fn fail(self, error: &str) {
        fail_all(self.ops, error);
    }

    /// A committed batch of one insert, and the receiver of its answer.
    #[cfg(test)]
    pub(super) fn one_insert_for_test() -> (Self, oneshot::Receiver<Result<Inserted, MailError>>) {
        let request = crate::store::test_request("ada@example.com");
        let (reply, answer) = oneshot::channel();
        let written = Written::Insert {
            stored: true,
            at: Utc::now(),
            suppressed: None,
            cursor: Cursor(1),
        };
        let batch = Self {
            ops: vec![Op::Insert(request, None, reply)],
            written: Ok(vec![written]),
        };
        (batch, answer)
    }

    /// True when the batch was committed, so its answers wait for a sync.
    pub(super) fn is_committed(&self) -> bool {
        self.written.is_ok()
    }
}

/// Sends every caller of `ops` `error`.
fn fail_all(ops: Vec<Op>, error: &str) {
    for op in ops {
        answer(op, Err(error.to_string()));
    }
}

/// The writer's connection and what it keeps between batches.
pub(super) struct Writer {
    connection: Connection,
    counters: WriteCounters,
    keys: SuppressionKeys,
    /// The last cursor given; each change of a batch takes the next one, and a batch that
    /// rolls back gives its numbers back.
    last_cursor: i64,
}

/// What trying a batch without waiting for a lock gave.
pub(super) enum Attempt {
    /// Written (or failed, the error in its answers), with the frames in the WAL after it.
    Done(u32, Committed),
    /// Another connection held the write lock: nothing was done, the batch is as it was.
    Locked,
}

impl Writer {
    /// The writer of `connection` (see `connection::open`), numbering changes after
    /// `last_cursor`.
    pub(super) fn new(
        connection: Connection,
        counters: WriteCounters,
        keys: SuppressionKeys,
        last_cursor: i64,
    ) -> Self {
        Self {
            connection,
            counters,
            keys,
            last_cursor,
        }
    }

    /// What the writer counts.
    pub(super) fn counters(&self) -> &WriteCounters {
        &self.counters
    }

    /// Runs `batch` in one transaction, waiting up to `connection::BUSY_TIMEOUT` for the write
    /// lock: on a blocking thread.
    pub(super) fn write_waiting(&mut self, batch: &mut Vec<Op>) -> (u32, Committed) {
        let _ = self.connection.busy_timeout(BUSY_TIMEOUT);
        let attempt = self.write(batch);
        let _ = self.connection.busy_timeout(std::time::Duration::ZERO);
        match attempt {
            Attempt::Done(frames, committed) => (frames, committed),
            Attempt::Locked => (
                0,
                Committed {
                    ops: std::mem::take(batch),
                    written: Err(format!(
                        "the delivery store stayed locked for {} s",
                        BUSY_TIMEOUT.as_secs()
                    )),
                },
            ),
        }
    }

    /// Runs `batch` in one transaction, leaving `batch` empty unless the write lock could
    /// not be taken within the connection's busy timeout, which is none on the runtime's
    /// thread ([`Attempt::Locked`]). Gives the frames in the WAL after it and the batch with
    /// what each write gave (or the error: nothing of it is stored).
    pub(super) fn write(&mut self, batch: &mut Vec<Op>) -> Attempt {
        let first_cursor = self.last_cursor;
        let mut written = Vec::with_capacity(batch.len());
        let mut rows = 0;
        // Another writer's commit on this thread may have set it; a failed commit leaves it 0.
        WAL_FRAMES.with(|f| f.set(0));
        let result = (|| -> rusqlite::Result<()> {
            let tx = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for op in batch.iter() {
                let (w, n) = apply(&tx, &self.keys, op, &mut self.last_cursor)?;
                written.push(w);
                rows += n;
            }
            tx.commit()
        })();
        if let Err(e) = &result
            && written.is_empty()
            && matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        {
            self.last_cursor = first_cursor;
            return Attempt::Locked;
        }
        // Read on the thread that committed, which is where the hook wrote it.
        let frames = WAL_FRAMES.with(Cell::get);
        let ops = std::mem::take(batch);
        let committed = match result {
            Ok(()) => {
                self.counters.commits.inc();
                self.counters.rows.inc_by(rows);
                Committed {
                    ops,
                    written: Ok(written),
                }
            }
            Err(e) => {
                // Nothing of this batch is stored (the transaction rolled back when dropped):
                // every caller hears so, including those whose own statement had run.
                tracing::error!(error = %e, count = ops.len(), "could not write a batch to the delivery store");
                self.last_cursor = first_cursor;
                Committed {
                    ops,
                    written: Err(e.to_string()),
                }
            }
        };
        Attempt::Done(frames, committed)
    }
}

/// Sends `op`'s caller its result.
fn answer(op: Op, written: Result<Written, String>) {
    let mismatch = || MailError::Write("a write got another write's result".into());
    match op {
        Op::Insert(request, sender, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Insert {
                    stored: true,
                    at,
                    suppressed,
                    cursor,
                }) => Ok(Inserted::Stored(DeliveryRecord::stored(
                    request, at, suppressed, cursor, sender,
                ))),
                Ok(Written::Insert { stored: false, .. }) => Ok(Inserted::Duplicate),
                Ok(_) => Err(mismatch()),
                Err(e) => Err(MailError::Write(e)),
            });
        }
        Op::Claim(_, _, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Claim(claimed)) => Ok(claimed),
                Ok(_) => Err(mismatch()),
                Err(e) => Err(MailError::Write(e)),
            });
        }
        Op::Finish(_, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Finish(cursors)) => Ok(cursors),
                Ok(_) => Err(mismatch()),
                Err(e) => Err(MailError::Write(e)),
            });
        }
        Op::Operate(_, reply) => {
            let _ = reply.send(match written {
                Ok(Written::Operate(operated)) => Ok(operated),
                Ok(_) => Err(mismatch()),
                Err(e) => Err(MailError::Write(e)),
            });
        }
    }
}

/// One write inside the open transaction, with the rows it wrote. An error aborts the
/// whole batch.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    keys: &SuppressionKeys,
    op: &Op,
    last_cursor: &mut i64,
) -> rusqlite::Result<(Written, u64)> {
    let mut next_cursor = || {
        *last_cursor += 1;
        *last_cursor
    };
    match op {
        Op::Insert(request, sender, _) => {
            // In the same transaction as the insert: an address added to the list before
            // this commit is never sent to.
            let suppressed = suppression_reason(tx, &keys.lookup_key(&request.to.email))?;
            let at = Utc::now();
            let cursor = next_cursor();
            let q = statements::insert_delivery(&NewDelivery {
                request,
                sender: sender.as_deref(),
                suppressed: suppressed.as_deref(),
                at,
                cursor: Numbering::Given(cursor),
            })
            .map_err(unbuilt)?;
            let stored = execute_one(tx, &q)? > 0;
            let written = Written::Insert {
                stored,
                at,
                suppressed,
                cursor: Cursor(cursor),
            };
            Ok((written, u64::from(stored)))
        }
        Op::Claim(ids, now, _) => {
            // One statement per id: its text is the same for every claim, so it is prepared
            // once for the connection.
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let q = statements::claim_one(*id, *now);
                for attempts in query_one(tx, &q, |row| row.get::<_, i64>("attempts"))? {
                    claimed.push(Claimed {
                        id: *id,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                    });
                }
            }
            let n = claimed.len() as u64;
            Ok((Written::Claim(claimed), n))
        }
        Op::Finish(outcomes, _) => {
            let mut n = 0;
            let mut cursors = Cursors::with_capacity(outcomes.len());
            for o in outcomes {
                let cursor = next_cursor();
                let changed = execute_one(tx, &statements::finish_one(o, cursor))? as u64;
                if changed > 0 {
                    cursors.insert(o.id, Cursor(cursor));
                }
                n += changed;
                if let Some(suppression) = &o.suppress {
                    n += u64::from(add_suppression(tx, keys, suppression)?);
                }
            }
            Ok((Written::Finish(cursors), n))
        }
        Op::Operate(operation, _) => {
            let (operated, n) = operate(tx, keys, operation, &mut next_cursor)?;
            Ok((Written::Operate(operated), n))
        }
    }
}
