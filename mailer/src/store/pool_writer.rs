//! Writes through the sea-orm pool, for PostgreSQL and in-memory SQLite: a task that stores
//! the requests arriving together with one `INSERT … ON CONFLICT (id) DO NOTHING RETURNING
//! id`, claims in one `UPDATE … RETURNING`, and outcomes in one `UPDATE … WHERE id IN (…)` per
//! group of equal outcomes. Each statement is a round trip to the database, so the fewer
//! the better. An operator's rare writes ([`Operation`]) are one statement each.

use super::migration::{
    CURSOR_LOCK_FILTER, DELIVERIES, LOCKED_NEXT_CURSOR, NEXT_CURSOR, SUPPRESSIONS,
};
use super::rows::{
    COLUMNS, Claimed, Cursor, Cursors, DeliveryRecord, Finished, Inserted, NewSuppression,
    Operated, Operation, claimed_from_row, parse_id, suppressed_error, to_millis,
};
use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use sea_orm::sea_query::UpdateStatement;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The most requests stored by one statement (10 parameters each keeps it far below the
/// SQLite and PostgreSQL parameter limits).
const MAX_BATCH: usize = 512;

/// One request waiting for the insert task, with its sender's socket and where to answer.
type Job = (
    MailRequest,
    Option<String>,
    oneshot::Sender<Result<Inserted, MailError>>,
);

/// Where each change's cursor comes from.
#[derive(Clone)]
enum CursorSource {
    /// PostgreSQL: [`NEXT_CURSOR`], in a statement that takes the cursor lock first (see the
    /// migration that adds cursors).
    Database,
    /// In-memory SQLite: the pool's one connection is the database's only writer, so the
    /// process numbers changes itself.
    Counter(Arc<AtomicI64>),
}

impl CursorSource {
    /// The value of `cursor` for one changed row.
    fn next(&self) -> Expr {
        match self {
            CursorSource::Database => Expr::cust(NEXT_CURSOR),
            CursorSource::Counter(last) => Expr::val(last.fetch_add(1, Ordering::Relaxed) + 1),
        }
    }

    /// The value of `cursor` for the first row of an insert: on PostgreSQL it takes the
    /// cursor lock before its number.
    fn first(&self) -> Expr {
        match self {
            CursorSource::Database => Expr::cust(LOCKED_NEXT_CURSOR),
            CursorSource::Counter(_) => self.next(),
        }
    }

    /// Makes `update`, which numbers the rows it changes, take the cursor lock first.
    fn lock(&self, update: &mut UpdateStatement) {
        if matches!(self, CursorSource::Database) {
            update.and_where(Expr::cust(CURSOR_LOCK_FILTER));
        }
    }

    /// True when every row needs a statement of its own to get a cursor of its own (a
    /// counter value is a literal in the statement).
    fn per_row(&self) -> bool {
        matches!(self, CursorSource::Counter(_))
    }
}

/// The pool's writer; cheap to clone. The insert task ends once every handle is dropped.
#[derive(Clone)]
pub(crate) struct PoolWriter {
    db: DatabaseConnection,
    inserts: mpsc::Sender<Job>,
    cursors: CursorSource,
}

impl PoolWriter {
    /// Starts the insert task on `db`.
    pub(crate) async fn start(db: DatabaseConnection) -> Result<Self, MailError> {
        let cursors = if db.get_database_backend() == DbBackend::Sqlite {
            let q = Query::select()
                .expr_as(Expr::col("cursor").max(), "last")
                .from(DELIVERIES)
                .to_owned();
            let last: Option<i64> = match db.query_one(&q).await? {
                Some(row) => row.try_get("", "last")?,
                None => None,
            };
            CursorSource::Counter(Arc::new(AtomicI64::new(last.unwrap_or(0))))
        } else {
            CursorSource::Database
        };
        let (inserts, rx) = mpsc::channel(8192);
        tokio::spawn(store_batches(db.clone(), cursors.clone(), rx));
        Ok(Self {
            db,
            inserts,
            cursors,
        })
    }

    /// Stores `request` with the others that arrive together.
    pub(crate) async fn insert(
        &self,
        request: MailRequest,
        sender: Option<String>,
    ) -> Result<Inserted, MailError> {
        let (tx, rx) = oneshot::channel();
        self.inserts
            .send((request, sender, tx))
            .await
            .map_err(|_| MailError::ShuttingDown)?;
        rx.await.map_err(|_| MailError::ShuttingDown)?
    }

    /// Claims those of `ids` that are due at `now` (see `Store::claim_due`).
    pub(crate) async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, MailError> {
        let rows = if self.db.get_database_backend() == DbBackend::Sqlite {
            self.db.query_all_raw(sqlite_claim(ids, now)).await?
        } else {
            let q = Query::update()
                .table(DELIVERIES)
                .value("status", "sending")
                .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
                .and_where(Expr::col("status").is_in(["queued", "retrying"]))
                .and_where(Expr::col("next_attempt_at").lte(to_millis(now)))
                .returning(Query::returning().columns(["id", "attempts"]))
                .to_owned();
            self.db.query_all(&q).await?
        };
        rows.iter().map(claimed_from_row).collect()
    }

    /// Records `outcomes`, one statement per group of equal outcomes (most are "sent after
    /// one try").
    pub(crate) async fn finish(&self, outcomes: &[Finished]) -> Result<Cursors, MailError> {
        type Key<'a> = (
            DeliveryStatus,
            u32,
            Option<&'a str>,
            i64,
            Option<i64>,
            Option<MailRequestId>,
        );
        let mut groups: HashMap<Key<'_>, Vec<MailRequestId>> = HashMap::new();
        for o in outcomes {
            let key = (
                o.status,
                o.attempts,
                o.error.as_deref(),
                to_millis(o.next_attempt_at),
                o.sent_at_millis(),
                self.cursors.per_row().then_some(o.id),
            );
            groups.entry(key).or_default().push(o.id);
        }
        let mut cursors = Cursors::with_capacity(outcomes.len());
        for ((status, attempts, error, next, sent_at, _), ids) in groups {
            let mut q = Query::update();
            q.table(DELIVERIES)
                .value("status", status.as_db())
                .value("attempts", i64::from(attempts))
                .value("last_error", error.map(str::to_string))
                .value("next_attempt_at", next)
                .value("cursor", self.cursors.next())
                .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
                .returning(Query::returning().columns(["id", "cursor"]));
            if let Some(sent_at) = sent_at {
                // A sent mail keeps no `vars`: they are only needed to render it again.
                q.value("sent_at", sent_at).value("vars", "{}");
            }
            self.cursors.lock(&mut q);
            for row in self.db.query_all(&q).await? {
                let (id, cursor) = id_and_cursor(&row)?;
                cursors.insert(id, cursor);
            }
        }
        // After the outcomes: should this fail, the caller writes the whole batch again,
        // and both writes change nothing the second time but the cursors.
        for suppression in outcomes.iter().filter_map(|o| o.suppress.as_ref()) {
            add_suppression(&self.db, suppression).await?;
        }
        Ok(cursors)
    }

    /// Makes one [`Operation`], in one statement.
    pub(crate) async fn operate(&self, operation: Operation) -> Result<Operated, MailError> {
        match operation {
            Operation::Requeue(ids, now, sender) => {
                let chunks: Vec<&[MailRequestId]> = if self.cursors.per_row() {
                    ids.chunks(1).collect()
                } else {
                    vec![&ids[..]]
                };
                let mut moved = Vec::new();
                for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
                    let mut q = Query::update();
                    q.table(DELIVERIES)
                        .value("status", DeliveryStatus::Queued.as_db())
                        .value("next_attempt_at", to_millis(now))
                        .value("cursor", self.cursors.next())
                        .and_where(Expr::col("id").is_in(chunk.iter().map(|id| id.to_string())))
                        .and_where(Expr::col("status").eq(DeliveryStatus::Failed.as_db()))
                        .returning(Query::returning().column("id"));
                    if let Some(sender) = &sender {
                        q.value("sender", sender.clone());
                    }
                    self.cursors.lock(&mut q);
                    for row in self.db.query_all(&q).await? {
                        moved.push(parse_id(&row.try_get::<String>("", "id")?)?);
                    }
                }
                Ok(Operated::Moved(moved))
            }
            Operation::Cancel(id, now) => {
                // A cancelled mail keeps no `vars`, as a sent one.
                let mut q = Query::update()
                    .table(DELIVERIES)
                    .value("status", DeliveryStatus::Cancelled.as_db())
                    .value("vars", "{}")
                    .value("next_attempt_at", to_millis(now))
                    .value("cursor", self.cursors.next())
                    .and_where(Expr::col("id").eq(id.to_string()))
                    .and_where(Expr::col("status").is_in(["queued", "retrying"]))
                    .to_owned();
                self.cursors.lock(&mut q);
                Ok(Operated::Changed(
                    self.db.execute(&q).await?.rows_affected() == 1,
                ))
            }
            Operation::Suppress(suppression) => Ok(Operated::Changed(
                add_suppression(&self.db, &suppression).await?,
            )),
            Operation::Unsuppress(key) => {
                let q = Query::delete()
                    .from_table(SUPPRESSIONS)
                    .and_where(Expr::col("email_key").eq(key))
                    .to_owned();
                Ok(Operated::Changed(
                    self.db.execute(&q).await?.rows_affected() == 1,
                ))
            }
        }
    }
}

/// The `id, cursor` a write returns.
fn id_and_cursor(row: &sea_orm::QueryResult) -> Result<(MailRequestId, Cursor), MailError> {
    let id: String = row.try_get("", "id")?;
    let cursor: i64 = row.try_get("", "cursor")?;
    Ok((parse_id(&id)?, Cursor(cursor)))
}

/// Adds `suppression` unless its address is listed under any spelling; true when it was new.
async fn add_suppression(
    db: &impl ConnectionTrait,
    suppression: &NewSuppression,
) -> Result<bool, MailError> {
    let mut q = Query::insert();
    q.into_table(SUPPRESSIONS)
        .columns(["email", "email_key", "reason", "created_at"])
        .values([
            suppression.email.clone().into(),
            suppression.key.clone().into(),
            suppression.reason.clone().into(),
            to_millis(suppression.at).into(),
        ])
        .map_err(|e| MailError::Write(e.to_string()))?
        // No target: a conflict on the key or on the address as written (the old primary
        // key, which the key implies) both mean "listed already".
        .on_conflict(OnConflict::new().do_nothing().to_owned());
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

/// The reasons of those of `requests`' recipients on the suppression list, by canonical key.
async fn suppressed_among(
    db: &impl ConnectionTrait,
    requests: &[&MailRequest],
) -> Result<HashMap<String, String>, MailError> {
    let keys: HashSet<&str> = requests.iter().map(|r| r.to.email.canonical()).collect();
    let q = Query::select()
        .columns(["email_key", "reason"])
        .from(SUPPRESSIONS)
        .and_where(Expr::col("email_key").is_in(keys))
        .to_owned();
    let mut found = HashMap::new();
    for row in db.query_all(&q).await? {
        found.insert(row.try_get("", "email_key")?, row.try_get("", "reason")?);
    }
    Ok(found)
}

/// The claim for SQLite, written by hand: without statistics, SQLite's planner may take an
/// index on `status` or `next_attempt_at` (the partial index `mail_deliveries_due` covers both)
/// over the primary key for this `UPDATE`, and scan every due row per claim. A unary `+` keeps
/// those columns off every index, so the lookup is by id.
fn sqlite_claim(ids: &[MailRequestId], now: DateTime<Utc>) -> Statement {
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "UPDATE {DELIVERIES} SET status = 'sending' WHERE id IN ({marks}) \
         AND +status IN ('queued', 'retrying') AND +next_attempt_at <= ? RETURNING id, attempts"
    );
    let mut values: Vec<Value> = ids.iter().map(|id| id.to_string().into()).collect();
    values.push(to_millis(now).into());
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

async fn store_batches(db: DatabaseConnection, cursors: CursorSource, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = Utc::now();
        let requests: Vec<(&MailRequest, Option<&str>)> = batch
            .iter()
            .map(|(r, sender, _)| (r, sender.as_deref()))
            .collect();
        match insert_batch(&db, &cursors, &requests, now).await {
            Ok((mut new_ids, suppressed)) => {
                for (request, sender, reply) in batch.drain(..) {
                    // The same id twice in one batch: the first is stored, the rest are duplicates.
                    let inserted = if let Some(cursor) = new_ids.remove(&request.id) {
                        let reason = suppressed.get(request.to.email.canonical()).cloned();
                        Inserted::Stored(DeliveryRecord::stored(
                            request, now, reason, cursor, sender,
                        ))
                    } else {
                        Inserted::Duplicate
                    };
                    let _ = reply.send(Ok(inserted));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count = batch.len(), "could not store a batch of mail requests");
                let e = e.to_string();
                for (_, _, reply) in batch.drain(..) {
                    let _ = reply.send(Err(MailError::Write(e.clone())));
                }
            }
        }
    }
}

/// Inserts the requests (with their senders' sockets) in one statement and returns the ids
/// that were new with their cursors, and the suppression reasons of the recipients on the
/// list (by key), whose requests are stored `suppressed`. The list is read just before the
/// insert: an address added in between is as if added just after.
async fn insert_batch(
    db: &DatabaseConnection,
    cursors: &CursorSource,
    requests: &[(&MailRequest, Option<&str>)],
    now: DateTime<Utc>,
) -> Result<(Cursors, HashMap<String, String>), MailError> {
    if requests.is_empty() {
        return Ok((Cursors::new(), HashMap::new()));
    }
    let only_requests: Vec<&MailRequest> = requests.iter().map(|(r, _)| *r).collect();
    let suppressed = suppressed_among(db, &only_requests).await?;
    let now = to_millis(now);
    let mut q = Query::insert();
    // Every column but `sent_at`, in the order of the values below.
    q.into_table(DELIVERIES)
        .columns(COLUMNS.into_iter().filter(|c| *c != "sent_at"));
    for (n, (r, sender)) in requests.iter().enumerate() {
        let reason = suppressed.get(r.to.email.canonical());
        let (status, vars) = match reason {
            Some(_) => (DeliveryStatus::Suppressed, "{}".to_string()),
            None => (
                DeliveryStatus::Queued,
                serde_json::to_string(&r.vars).map_err(|e| MailError::Write(e.to_string()))?,
            ),
        };
        q.values([
            r.id.to_string().into(),
            r.template.as_str().into(),
            r.locale.as_str().into(),
            r.to.email.as_str().into(),
            r.to.name.clone().into(),
            vars.into(),
            status.as_db().into(),
            0i32.into(),
            reason.map(|r| suppressed_error(r)).into(),
            now.into(),
            now.into(),
            if n == 0 {
                cursors.first()
            } else {
                cursors.next()
            },
            sender.map(str::to_string).into(),
            r.traceparent.clone().into(),
        ])
        .map_err(|e| MailError::Write(e.to_string()))?;
    }
    q.on_conflict(OnConflict::column("id").do_nothing().to_owned())
        .returning(Query::returning().columns(["id", "cursor"]));
    let rows = db.query_all(&q).await?;
    let mut ids = Cursors::with_capacity(rows.len());
    for row in rows {
        let (id, cursor) = id_and_cursor(&row)?;
        ids.insert(id, cursor);
    }
    Ok((ids, suppressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim finds its rows by id, whatever the other indexes: one search of the primary
    /// key, and no scan of the due rows.
    #[tokio::test]
    async fn the_sqlite_claim_looks_rows_up_by_id() {
        let ids = [MailRequestId::new(), MailRequestId::new()];
        let steps = super::super::query_plan::sqlite_plan(sqlite_claim(&ids, Utc::now())).await;
        assert!(
            steps.iter().any(|s| s.contains("(id=?)")),
            "the claim should search by id: {steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s.contains("mail_deliveries_due") || s.starts_with("SCAN")),
            "the claim should not read the due index or scan: {steps:?}"
        );
    }
}
