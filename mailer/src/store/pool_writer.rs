//! Writes through the sea-orm pool, for PostgreSQL: a task that stores the requests arriving
//! together with one insert, claims in one update, and outcomes in one update per group of
//! equal outcomes, each statement from [`super::statements`]. Each statement is a round trip
//! to the database, so the fewer the better. An operator's rare writes ([`Operation`]) are one
//! statement each, but for the webhooks' writes, a few statements in one transaction. Every change's cursor comes from the sequence ([`Numbering::Sequence`]).

use super::migration::{WEBHOOK_ENDPOINTS, drop_outbox_triggers, outbox_triggers};
use super::rows::{
    Claimed, Cursor, Cursors, DeliveryRecord, Finished, Inserted, NewSuppression, Operated,
    Operation, claimed_from_row, parse_id, to_millis,
};
use super::statements::{self, NewDelivery, Numbering};
use super::status::DeliveryStatus;
use super::suppression_key::SuppressionKeys;
use super::webhooks::{self, Statement, WebhookWrite};
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// The most requests stored by one statement (14 parameters each keeps it far below the
/// PostgreSQL parameter limit).
const MAX_BATCH: usize = 512;

/// One request waiting for the insert task, with its sender's socket and where to answer.
type Job = (
    MailRequest,
    Option<String>,
    oneshot::Sender<Result<Inserted, MailError>>,
);

/// The pool's writer; cheap to clone. The insert task ends once every handle is dropped.
#[derive(Clone)]
pub(crate) struct PoolWriter {
    db: DatabaseConnection,
    keys: SuppressionKeys,
    inserts: mpsc::Sender<Job>,
}

impl PoolWriter {
    /// Starts the insert task on `db`.
    pub(crate) fn start(db: DatabaseConnection, keys: SuppressionKeys) -> Self {
        let (inserts, rx) = mpsc::channel(8192);
        tokio::spawn(store_batches(db.clone(), keys.clone(), rx));
        Self { db, keys, inserts }
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
        let rows = self.db.query_all(&statements::claim(ids, now)).await?;
        rows.iter().map(claimed_from_row).collect()
    }

    /// Records `outcomes`, one statement per group of equal outcomes (most are "sent after
    /// one try").
    pub(crate) async fn finish(&self, outcomes: &[Finished]) -> Result<Cursors, MailError> {
        type Key<'a> = (DeliveryStatus, u32, Option<&'a str>, i64, Option<i64>);
        let mut groups: HashMap<Key<'_>, (&Finished, Vec<MailRequestId>)> = HashMap::new();
        for o in outcomes {
            let key = (
                o.status,
                o.attempts,
                o.error.as_deref(),
                to_millis(o.next_attempt_at),
                o.sent_at_millis(),
            );
            groups
                .entry(key)
                .or_insert_with(|| (o, Vec::new()))
                .1
                .push(o.id);
        }
        let mut cursors = Cursors::with_capacity(outcomes.len());
        for (outcome, ids) in groups.into_values() {
            let mut q = statements::finish(outcome, &ids, Numbering::Sequence);
            q.returning(statements::returning_cursors());
            for row in self.db.query_all(&q).await? {
                let (id, cursor) = id_and_cursor(&row)?;
                cursors.insert(id, cursor);
            }
        }
        // After the outcomes: should this fail, the caller writes the whole batch again,
        // and both writes change nothing the second time but the cursors.
        for suppression in outcomes.iter().filter_map(|o| o.suppress.as_ref()) {
            add_suppression(&self.db, &self.keys, suppression).await?;
        }
        Ok(cursors)
    }

    /// Makes one [`Operation`], in one statement.
    pub(crate) async fn operate(&self, operation: Operation) -> Result<Operated, MailError> {
        match operation {
            Operation::Requeue(ids, now, sender) => {
                if ids.is_empty() {
                    return Ok(Operated::Moved(Vec::new()));
                }
                let q = statements::requeue(&ids, now, sender.as_deref(), Numbering::Sequence);
                let mut moved = Vec::new();
                for row in self.db.query_all(&q).await? {
                    moved.push(parse_id(&row.try_get::<String>("", "id")?)?);
                }
                Ok(Operated::Moved(moved))
            }
            Operation::Cancel(id, now) => {
                let q = statements::cancel(id, now, Numbering::Sequence);
                Ok(Operated::Changed(
                    self.db.execute(&q).await?.rows_affected() == 1,
                ))
            }
            Operation::Suppress(suppression) => Ok(Operated::Changed(
                add_suppression(&self.db, &self.keys, &suppression).await?,
            )),
            Operation::Unsuppress(key) => {
                let q = statements::remove_suppression(&key);
                Ok(Operated::Changed(
                    self.db.execute(&q).await?.rows_affected() == 1,
                ))
            }
            Operation::ForgetAddress(key) => {
                let q = statements::forget_suppressed_address(&key);
                Ok(Operated::Changed(
                    self.db.execute(&q).await?.rows_affected() == 1,
                ))
            }
            Operation::Delete(ids) => {
                if ids.is_empty() {
                    return Ok(Operated::Deleted(0));
                }
                let q = statements::delete_deliveries(&ids);
                Ok(Operated::Deleted(
                    self.db.execute(&q).await?.rows_affected(),
                ))
            }
            Operation::Report(report) => {
                let tx = self.db.begin().await?;
                tx.execute(&statements::insert_report(&report)?).await?;
                let mut changed = None;
                if let Some(status) = report.kind.new_status() {
                    let q = statements::mark_reported(&report, status, Numbering::Sequence);
                    if let Some(row) = tx.query_one(&q).await? {
                        changed = Some(id_and_cursor(&row)?.1);
                        if let Some(suppression) = &report.suppress {
                            let q = statements::add_suppression(
                                suppression,
                                &self.keys.lookup_key(&suppression.email),
                            )?;
                            tx.execute(&q).await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(Operated::Reported(changed))
            }
            Operation::Webhook(WebhookWrite::Claim(ids, now, until)) => {
                let mut claimed = Vec::new();
                for row in self
                    .db
                    .query_all(&webhooks::claim(&ids, now, until))
                    .await?
                {
                    claimed.push(row.try_get::<String>("", "id")?);
                }
                Ok(Operated::Claimed(claimed))
            }
            Operation::Webhook(write) => {
                let statements = webhooks::statements(&write)?;
                let tx = self.db.begin().await?;
                let mut first = None;
                for statement in &statements {
                    let n = match statement {
                        Statement::Insert(q) => tx.execute(q).await?,
                        Statement::Update(q) => tx.execute(q).await?,
                        Statement::Delete(q) => tx.execute(q).await?,
                        Statement::LockEndpoints => {
                            tx.execute_unprepared(&format!(
                                "LOCK TABLE {WEBHOOK_ENDPOINTS} IN EXCLUSIVE MODE"
                            ))
                            .await?;
                            continue;
                        }
                        Statement::OutboxTriggers => {
                            tx.execute_unprepared(&outbox_triggers(DbBackend::Postgres))
                                .await?;
                            continue;
                        }
                        Statement::DropOutboxTriggersIfUnused => {
                            let left: i64 =
                                match tx.query_one(&webhooks::endpoint_count_statement()).await? {
                                    Some(row) => row.try_get("", "n")?,
                                    None => 0,
                                };
                            if left == 0 {
                                tx.execute_unprepared(&drop_outbox_triggers(DbBackend::Postgres))
                                    .await?;
                            }
                            continue;
                        }
                    }
                    .rows_affected();
                    first.get_or_insert(n);
                }
                tx.commit().await?;
                Ok(Operated::Changed(first.unwrap_or(0) > 0))
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
    db: &DatabaseConnection,
    keys: &SuppressionKeys,
    suppression: &NewSuppression,
) -> Result<bool, MailError> {
    let q = statements::add_suppression(suppression, &keys.lookup_key(&suppression.email))?;
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

/// The reasons of those of `requests`' recipients on the suppression list, by canonical
/// address (looked up by their lookup keys).
async fn suppressed_among(
    db: &DatabaseConnection,
    keys: &SuppressionKeys,
    requests: &[(&MailRequest, Option<&str>)],
) -> Result<HashMap<String, String>, MailError> {
    let by_key: HashMap<String, &str> = requests
        .iter()
        .map(|(r, _)| (keys.lookup_key(&r.to.email), r.to.email.canonical()))
        .collect();
    let mut found = HashMap::new();
    let q = statements::suppression_reasons(by_key.keys().map(String::as_str));
    for row in db.query_all(&q).await? {
        let key: String = row.try_get("", "email_key")?;
        if let Some(address) = by_key.get(&key) {
            found.insert((*address).to_owned(), row.try_get("", "reason")?);
        }
    }
    Ok(found)
}

async fn store_batches(db: DatabaseConnection, keys: SuppressionKeys, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = Utc::now();
        let requests: Vec<(&MailRequest, Option<&str>)> = batch
            .iter()
            .map(|(r, sender, _)| (r, sender.as_deref()))
            .collect();
        match insert_batch(&db, &keys, &requests, now).await {
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
    keys: &SuppressionKeys,
    requests: &[(&MailRequest, Option<&str>)],
    now: DateTime<Utc>,
) -> Result<(Cursors, HashMap<String, String>), MailError> {
    if requests.is_empty() {
        return Ok((Cursors::new(), HashMap::new()));
    }
    let suppressed = suppressed_among(db, keys, requests).await?;
    let rows: Vec<NewDelivery<'_>> = requests
        .iter()
        .map(|(request, sender)| NewDelivery {
            request,
            sender: *sender,
            suppressed: suppressed
                .get(request.to.email.canonical())
                .map(String::as_str),
            at: now,
            cursor: Numbering::Sequence,
        })
        .collect();
    let mut q = statements::insert_deliveries(&rows)?;
    q.returning(statements::returning_cursors());
    let rows = db.query_all(&q).await?;
    let mut ids = Cursors::with_capacity(rows.len());
    for row in rows {
        let (id, cursor) = id_and_cursor(&row)?;
        ids.insert(id, cursor);
    }
    Ok((ids, suppressed))
}
