//! The single writer that stores incoming mail requests in batches.
//!
//! Every door sends its request into one channel; this task takes all the requests that
//! arrived together (`recv_many`), stores them with one `INSERT … ON CONFLICT (id) DO
//! NOTHING RETURNING id`, and answers each waiter. One statement per batch instead of one
//! transaction per request is what lets the mailer ack thousands of requests a second.
//! That is the PostgreSQL (and in-memory SQLite) road; on an SQLite file the requests go to
//! the [`SqliteWriter`] instead, which batches them with the other writes.

use super::migration::DELIVERIES;
use super::records::to_millis;
use super::sqlite_writer::SqliteWriter;
use chrono::Utc;
use domain::{MailRequest, MailRequestId};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

/// The most requests stored by one statement (12 parameters each keeps it far below the
/// SQLite and PostgreSQL parameter limits).
const MAX_BATCH: usize = 512;

/// What storing one request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A new record was written.
    Stored,
    /// A record with this id already existed; nothing was written.
    Duplicate,
}

/// One request waiting for the pool task, with where to answer.
pub type Job = (MailRequest, oneshot::Sender<Result<StoreOutcome, String>>);

/// The handle the doors use; cheap to clone.
#[derive(Clone)]
pub enum BatchWriter {
    /// A task that inserts through the pool.
    Pool(mpsc::Sender<Job>),
    /// The SQLite writer, which batches by itself.
    Sqlite(SqliteWriter),
}

impl BatchWriter {
    /// Starts the writer task on `db`, or uses `sqlite` when given. The task ends once every
    /// handle is dropped.
    pub fn start(db: DatabaseConnection, sqlite: Option<SqliteWriter>) -> Self {
        if let Some(writer) = sqlite {
            return Self::Sqlite(writer);
        }
        let (jobs, rx) = mpsc::channel(8192);
        tokio::spawn(run(db, rx));
        Self::Pool(jobs)
    }

    /// Stores `request` (or finds it already stored). The error is one sentence for the
    /// `unavailable` answer; it never carries database internals.
    pub async fn store(&self, request: MailRequest) -> Result<StoreOutcome, String> {
        let jobs = match self {
            Self::Pool(jobs) => jobs,
            Self::Sqlite(writer) => return writer.insert(request).await,
        };
        let (tx, rx) = oneshot::channel();
        jobs.send((request, tx))
            .await
            .map_err(|_| "the mailer is shutting down and cannot store requests".to_string())?;
        rx.await
            .map_err(|_| "the mailer is shutting down and cannot store requests".to_string())?
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let requests: Vec<&MailRequest> = batch.iter().map(|(r, _)| r).collect();
        match insert_batch(&db, &requests).await {
            Ok(mut new_ids) => {
                for (request, reply) in batch.drain(..) {
                    // The same id twice in one batch: the first is stored, the rest are duplicates.
                    let outcome = if new_ids.remove(&request.id) {
                        StoreOutcome::Stored
                    } else {
                        StoreOutcome::Duplicate
                    };
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count = batch.len(), "could not store a batch of mail requests");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(
                        "the delivery store is not answering; the request was not stored, try again later"
                            .to_string(),
                    ));
                }
            }
        }
    }
}

/// Inserts the requests in one statement and returns the ids that were new.
pub async fn insert_batch(
    db: &DatabaseConnection,
    requests: &[&MailRequest],
) -> Result<HashSet<MailRequestId>, DbErr> {
    if requests.is_empty() {
        return Ok(HashSet::new());
    }
    let now = to_millis(Utc::now());
    let mut q = Query::insert();
    q.into_table(DELIVERIES).columns([
        "id",
        "template",
        "locale",
        "to_email",
        "to_name",
        "vars",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
    ]);
    for r in requests {
        let vars = serde_json::to_string(&r.vars).map_err(|e| DbErr::Type(e.to_string()))?;
        q.values([
            r.id.to_string().into(),
            r.template.as_str().into(),
            r.locale.as_str().into(),
            r.to.email.as_str().into(),
            r.to.name.clone().into(),
            vars.into(),
            "queued".into(),
            0i32.into(),
            now.into(),
            now.into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    q.on_conflict(OnConflict::column("id").do_nothing().to_owned())
        .returning_col("id");
    let rows = db.query_all(&q).await?;
    let mut ids = HashSet::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("", "id")?;
        ids.insert(
            id.parse()
                .map_err(|e: domain::Invalid| DbErr::Type(e.to_string()))?,
        );
    }
    Ok(ids)
}
