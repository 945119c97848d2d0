//! The delivery store: one row per mail request id, on SQLite or PostgreSQL.
//!
//! - [`migration`]: the schema, applied at start.
//! - [`rows`]: the row types every backend reads and writes.
//! - [`status`]: the statuses a delivery goes through.
//! - [`reads`]: reads, on the sea-orm pool.
//! - [`operations`]: retries, cancels and the suppression list, for operators.
//! - [`retention`]: what retention and erasure delete.
//! - [`statements`]: every write, built once for every backend.
//! - [`suppression_key`]: the suppression list's lookup key, a keyed hash of the address.
//! - [`webhooks`]: webhook endpoints, the outbox of their events and the attempts.
//! - [`writer`]: the one write path, chosen at connect: [`sqlite_file`] for SQLite, a file or
//!   in memory (every write in shared transactions), [`pool_writer`] for PostgreSQL.
//!
//! The request id is the primary key, so "at most one mail per id" starts here: a second
//! insert of the same id changes nothing and is answered `duplicate`. `sending` is internal:
//! a record is claimed (`sending`) before the SMTP handoff, so two workers never hand the same
//! request over, and a record found `sending` at start is one whose process died mid-send.

mod migration;
mod operations;
mod pool_writer;
#[cfg(test)]
mod query_plan;
mod reads;
mod retention;
mod rows;
mod sqlite_file;
mod statements;
mod status;
mod suppression_key;
mod webhooks;
mod writer;

pub use migration::Migrator;
pub use operations::{RetriedPage, RetryCursor, RetryFilter};
pub use rows::{
    Claimed, Cursor, Cursors, DeliveryRecord, DeliveryReport, Finished, Inserted, LastMail,
    NewReport, NewSuppression, Page, ReportKind, Suppression, SuppressionPage,
};
pub use sqlite_file::WriteCounters;
pub use status::{DeliveryStatus, PUBLIC_STATUSES};
pub use suppression_key::{ConnectError, SuppressionKeys};
pub use webhooks::{
    AttemptDone, AttemptPage, DueMessage, EndpointChange, MessageNext, NewEndpoint, WebhookAttempt,
    WebhookEndpoint,
};
pub use writer::Gathering;

use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{Email, MailRequest, MailRequestId};
use rows::{Operated, Operation};
use sea_orm::{ConnectOptions, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;
use webhooks::WebhookWrite;
use writer::{Database, Writer};

/// The delivery store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Reads, the schema and the rare writes.
    db: DatabaseConnection,
    /// Inserts, claims and outcomes.
    writer: Writer,
    /// The suppression list's lookup keys.
    keys: SuppressionKeys,
}

/// Connects to `url`, brings the schema up to date, makes sure the suppression list is kept
/// under `keys` (see [`suppression_key`]; another key is taken over on an empty list only
/// when `adopt_key_when_empty`), and starts the writer that suits the database.
pub async fn connect(
    url: &str,
    counters: WriteCounters,
    keys: SuppressionKeys,
    adopt_key_when_empty: bool,
) -> Result<Store, ConnectError> {
    domain::config::prepare_sqlite_file(url)
        .map_err(|e| MailError::Write(format!("could not prepare the database file: {e}")))?;
    let database = Database::of(url);
    let sqlite = database.sqlite.is_some();
    let mut options = ConnectOptions::new(database.pool_url.clone());
    // SQLite has one writer. With several pooled connections, concurrent writers wait
    // inside SQLite's busy handler, which sleeps in steps of up to 100 ms; one connection
    // queues them in the pool instead, without sleeping. PostgreSQL locks rows and takes
    // concurrent writers well.
    options
        .max_connections(if sqlite { 1 } else { 8 })
        .acquire_timeout(Duration::from_secs(5))
        // A file cannot go stale the way a network connection can, and the check would be
        // one more round trip to the connection's thread per statement.
        .test_before_acquire(!sqlite)
        .sqlx_logging(false)
        // WAL lets readers (GET /mails) run while the writer writes. FULL: a commit this
        // connection makes (the schema, putting back abandoned claims) is on disk before it
        // returns, like the writer's. `secure_delete`, as on the writer's connection: what the
        // schema's changes drop (addresses in clear among them) is overwritten.
        .map_sqlx_sqlite_opts(|o| {
            o.pragma("journal_mode", "WAL")
                .pragma("synchronous", "FULL")
                .pragma("secure_delete", "ON")
                .busy_timeout(Duration::from_secs(10))
        });
    let db = sea_orm::Database::connect(options)
        .await
        .map_err(MailError::from)?;
    Migrator::up(&db, None).await.map_err(MailError::from)?;
    suppression_key::secure(&db, &keys, adopt_key_when_empty).await?;
    let writer = Writer::open(&database, &db, counters, keys.clone())?;
    Ok(Store { db, writer, keys })
}

impl Store {
    /// The pool, for tests and tools that look at the database directly.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// True when the database answers within two seconds.
    pub async fn is_up(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.db.ping()).await,
            Ok(Ok(()))
        )
    }

    /// How long the delivery loop should let writes gather (see [`Gathering`]).
    pub fn gathering(&self) -> Gathering {
        self.writer.gathering()
    }

    /// Stores `request` unless its id is stored already, and returns the stored record.
    /// `sender` is the socket id of the service client that sent it, if one did.
    pub async fn insert(
        &self,
        request: MailRequest,
        sender: Option<String>,
    ) -> Result<Inserted, MailError> {
        self.writer.insert(request, sender).await
    }

    /// Claims those of `ids` that are due at `now` (`queued`, or `retrying` whose time has
    /// come), now `sending`, and returns which were claimed with their stored tries. Copies
    /// of a record queued twice, or read before its last try, claim nothing: the status or
    /// the time no longer matches. On PostgreSQL the row lock makes a second claimer see the
    /// new status; on SQLite writes are serialised by the database lock.
    pub async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, MailError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.writer.claim_due(ids, now).await
    }

    /// Records the outcomes of tries and returns the cursor each change got. Writing the
    /// same outcome twice changes nothing but the cursor, so a failed call may be repeated.
    pub async fn finish(&self, outcomes: Vec<Finished>) -> Result<Cursors, MailError> {
        if outcomes.is_empty() {
            return Ok(Cursors::new());
        }
        self.writer.finish(outcomes).await
    }

    /// Up to `limit` finished deliveries (sent, failed, cancelled, suppressed) stored before
    /// `before`.
    pub async fn expired(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MailRequestId>, MailError> {
        retention::expired(&self.db, before, limit).await
    }

    /// The ended deliveries that asked for an erasure not made yet.
    pub async fn erasures_due(&self) -> Result<Vec<LastMail>, MailError> {
        retention::erasures_due(&self.db).await
    }

    /// Every delivery addressed to `email`, however it was spelt; with `requested_before`,
    /// only those requested before that time.
    pub async fn addressed_to(
        &self,
        email: &Email,
        requested_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<MailRequestId>, MailError> {
        retention::addressed_to(&self.db, email, requested_before).await
    }

    /// Deletes the deliveries `ids` through the writer, in one statement; how many went.
    pub async fn delete(&self, ids: Vec<MailRequestId>) -> Result<u64, MailError> {
        match self.writer.operate(Operation::Delete(ids)).await? {
            Operated::Deleted(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// The record of `id`, if stored.
    pub async fn get(&self, id: MailRequestId) -> Result<Option<DeliveryRecord>, MailError> {
        reads::get(&self.db, id).await
    }

    /// One page of records, newest first, optionally only those with `status`.
    pub async fn list(
        &self,
        status: Option<DeliveryStatus>,
        page: u64,
        per_page: u64,
    ) -> Result<Page, MailError> {
        reads::list(&self.db, status, page, per_page).await
    }

    /// The deliveries changed after `after` (each once, as it is now), oldest change first,
    /// at most `limit`; without `after`, the latest `limit`.
    pub async fn changes(
        &self,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<DeliveryRecord>, MailError> {
        reads::changes(&self.db, after, limit).await
    }

    /// Up to `limit` records due for a try at `now`, oldest due first.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DeliveryRecord>, MailError> {
        reads::due(&self.db, now, limit).await
    }

    /// At start: puts back every record a stopped process left `sending` (it died during
    /// the handoff) so it is sent again, and returns how many there were.
    pub async fn release_abandoned_claims(&self) -> Result<u64, MailError> {
        reads::release_abandoned_claims(&self.db).await
    }

    /// Puts the `failed` delivery `id` back to `queued`, due now, and returns its record.
    /// 404 when unknown; 409 `not_retryable` in any other status, `suppressed` when its
    /// recipient is on the suppression list (it would be refused again: remove the address
    /// first). Its tries go on counting, and its request id, so its Message-ID, stays.
    /// With `sender`, that socket hears the mail's next statuses.
    pub async fn retry(
        &self,
        id: MailRequestId,
        now: DateTime<Utc>,
        sender: Option<String>,
    ) -> Result<DeliveryRecord, MailError> {
        operations::retry(&self.db, &self.writer, &self.keys, id, now, sender).await
    }

    /// Retries up to `limit` of the `failed` deliveries `filter` matches, after `after`, in
    /// one transaction. Deliveries whose recipient is suppressed are skipped (they stay
    /// `failed`).
    pub async fn retry_page(
        &self,
        filter: &RetryFilter,
        after: Option<&RetryCursor>,
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<RetriedPage, MailError> {
        operations::retry_page(
            &self.db,
            &self.writer,
            &self.keys,
            filter,
            after,
            limit,
            now,
        )
        .await
    }

    /// Cancels the `queued` or `retrying` delivery `id` and returns its record. 404 when
    /// unknown; 409 `not_cancellable` otherwise (one being handed to SMTP included).
    pub async fn cancel(
        &self,
        id: MailRequestId,
        now: DateTime<Utc>,
    ) -> Result<DeliveryRecord, MailError> {
        operations::cancel(&self.db, &self.writer, id, now).await
    }

    /// Puts `email` on the suppression list with `reason`; returns its entry and whether it
    /// is new (an address listed already, under any spelling, keeps its first entry).
    pub async fn suppress(
        &self,
        email: &Email,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(Suppression, bool), MailError> {
        operations::suppress(&self.db, &self.writer, &self.keys, email, reason, now).await
    }

    /// Takes `email`, spelt any way, off the suppression list; false when it was not on it.
    pub async fn unsuppress(&self, email: &Email) -> Result<bool, MailError> {
        operations::unsuppress(&self.writer, &self.keys, email).await
    }

    /// Erases the address, as written, and its first reason from its suppression entry, if
    /// any: the entry stays, as its lookup key alone. True when an address was erased.
    pub async fn forget_suppressed_address(&self, email: &Email) -> Result<bool, MailError> {
        let key = self.keys.lookup_key(email);
        Ok(self.writer.operate(Operation::ForgetAddress(key)).await? == Operated::Changed(true))
    }

    /// The suppression-list entry of `email`, spelt any way, if any.
    pub async fn suppression(&self, email: &Email) -> Result<Option<Suppression>, MailError> {
        operations::suppression(&self.db, &self.keys.lookup_key(email)).await
    }

    /// Records a report sent back about a delivery, and, for a bounce or a complaint about a
    /// `sent` one, makes it `bounced` or `complained` with its address suppressed, in one
    /// transaction; answers the change's cursor when there was a change.
    pub async fn report(&self, report: NewReport) -> Result<Option<Cursor>, MailError> {
        match self.writer.operate(Operation::Report(report)).await? {
            Operated::Reported(cursor) => Ok(cursor),
            _ => Ok(None),
        }
    }

    /// Every webhook endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, MailError> {
        webhooks::endpoints(&self.db).await
    }

    /// The webhook endpoint `id`, if any.
    pub async fn webhook_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, MailError> {
        webhooks::endpoint(&self.db, id).await
    }

    /// How many webhook endpoints there are.
    pub async fn webhook_endpoint_count(&self) -> Result<u64, MailError> {
        webhooks::endpoint_count(&self.db).await
    }

    /// Adds a webhook endpoint: from the next status change on, its events are written.
    pub async fn add_webhook_endpoint(&self, endpoint: NewEndpoint) -> Result<(), MailError> {
        self.webhook_write(WebhookWrite::Add(endpoint))
            .await
            .map(|_| ())
    }

    /// Deletes a webhook endpoint with its events and attempts; false when there was none.
    pub async fn remove_webhook_endpoint(&self, id: &str) -> Result<bool, MailError> {
        self.webhook_write(WebhookWrite::Remove(id.to_string()))
            .await
    }

    /// Changes a webhook endpoint; false when there is none.
    pub async fn change_webhook_endpoint(
        &self,
        id: &str,
        change: EndpointChange,
    ) -> Result<bool, MailError> {
        self.webhook_write(WebhookWrite::Change(id.to_string(), change))
            .await
    }

    /// Up to `limit` webhook events due at `now` (see [`webhooks::due`]).
    pub async fn webhooks_due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DueMessage>, MailError> {
        webhooks::due(&self.db, now, limit).await
    }

    /// Takes those of the webhook events `ids` no mailer holds, until `until`; returns the
    /// ids taken.
    pub async fn claim_webhooks(
        &self,
        ids: Vec<String>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, MailError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .writer
            .operate(Operation::Webhook(WebhookWrite::Claim(ids, now, until)))
            .await?
        {
            Operated::Claimed(ids) => Ok(ids),
            _ => Ok(Vec::new()),
        }
    }

    /// Records webhook attempts and what becomes of their events.
    pub async fn record_webhook_attempts(&self, done: Vec<AttemptDone>) -> Result<(), MailError> {
        if done.is_empty() {
            return Ok(());
        }
        self.webhook_write(WebhookWrite::Record(done))
            .await
            .map(|_| ())
    }

    /// Lets go of every webhook event a stopped process held (at start, when this mailer is
    /// the store's only one).
    pub async fn release_webhooks(&self) -> Result<(), MailError> {
        self.webhook_write(WebhookWrite::Release).await.map(|_| ())
    }

    /// How many webhook events wait for delivery.
    pub async fn webhook_backlog(&self) -> Result<u64, MailError> {
        webhooks::backlog(&self.db).await
    }

    /// The event of attempt `attempt_id` of endpoint `endpoint_id`, to send again.
    pub async fn webhook_message_of_attempt(
        &self,
        endpoint_id: &str,
        attempt_id: &str,
    ) -> Result<Option<DueMessage>, MailError> {
        webhooks::message_of_attempt(&self.db, endpoint_id, attempt_id).await
    }

    /// One page of the attempts of endpoint `endpoint_id`, newest first.
    pub async fn webhook_attempts(
        &self,
        endpoint_id: &str,
        page: u64,
        per_page: u64,
    ) -> Result<AttemptPage, MailError> {
        webhooks::attempts(&self.db, endpoint_id, page, per_page).await
    }

    async fn webhook_write(&self, write: WebhookWrite) -> Result<bool, MailError> {
        Ok(self.writer.operate(Operation::Webhook(write)).await? == Operated::Changed(true))
    }

    /// One page of the suppression list, newest first.
    pub async fn suppressions(
        &self,
        page: u64,
        per_page: u64,
    ) -> Result<SuppressionPage, MailError> {
        operations::suppressions(&self.db, page, per_page).await
    }
}

/// A request for the store's tests: `welcome` in English to `email`, named Ada, without
/// variables.
#[cfg(test)]
pub(crate) fn test_request(email: &str) -> MailRequest {
    serde_json::from_value(serde_json::json!({
        "id": MailRequestId::new().to_string(),
        "template": "welcome",
        "locale": "en",
        "to": {"email": email, "name": "Ada"},
        "vars": {},
        "requested_at": "2026-12-07T10:00:00Z",
    }))
    .expect("a request")
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// 2 is FULL: the pool's commits (the schema, putting back claims) are on disk before
    /// they return, like the writer's.
    #[tokio::test]
    async fn the_pool_syncs_every_commit_to_disk() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let keys = super::SuppressionKeys::new(&domain::Secret::new("a key for this test"));
        let store = super::connect(&url, Default::default(), keys, true)
            .await
            .expect("the store opens");
        let row = store
            .db()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await
            .expect("the pragma")
            .expect("a row");
        let synchronous: i64 = row.try_get_by_index(0).expect("a number");
        assert_eq!(synchronous, 2);
    }
}
