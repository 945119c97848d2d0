//! Delivery records: what the store keeps per request id, and the moves between statuses.
//!
//! `sending` is internal: a record is claimed (`sending`) before the SMTP handoff, so two
//! workers never hand the same request over, and a record found `sending` at start is one
//! whose process died mid-send. Outside, `sending` shows as `queued`.

use super::migration::{DELIVERIES, DUE_INDEX};
use super::sqlite_writer::SqliteWriter;
pub use super::status::DeliveryStatus;
use chrono::{DateTime, TimeZone, Utc};
use domain::{Email, Locale, MailRequestId, Recipient, Template};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement};
use serde::Serialize;
use serde_json::{Map, Value};

/// One stored delivery, serialized as the contract's delivery record.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// The request id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// Which language.
    pub locale: Locale,
    /// The recipient.
    pub to: Recipient,
    /// The template variables (kept for sending, not shown).
    #[serde(skip)]
    pub vars: Map<String, Value>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last try's error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the request was stored.
    pub created_at: DateTime<Utc>,
    /// When the SMTP server took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// When the next try is due (internal).
    #[serde(skip)]
    pub next_attempt_at: DateTime<Utc>,
}

/// One page of `GET /mails`.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The records, newest first.
    pub items: Vec<DeliveryRecord>,
    /// How many records match the filter.
    pub total: u64,
    /// The page number, from 1.
    pub page: u64,
    /// Records per page.
    pub per_page: u64,
}

pub(crate) const COLUMNS: [&str; 12] = [
    "id",
    "template",
    "locale",
    "to_email",
    "to_name",
    "vars",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
];

/// The due-work query, written so that each backend reads the partial index
/// `mail_deliveries_due`:
/// - the statuses are written out, not bound: PostgreSQL matches a query's condition against
///   a partial index's when it plans the query, so a condition on bound parameters may not
///   use the index (its documentation on partial indexes says so of prepared statements);
/// - SQLite's planner, without statistics, prefers the `(status, created_at)` index for
///   `status IN (…)`, which reads every due row and sorts them, so the query names the index.
fn due_statement(backend: DbBackend, now: DateTime<Utc>, limit: u64) -> Statement {
    let (hint, at, n) = if backend == DbBackend::Sqlite {
        (format!(" INDEXED BY {DUE_INDEX}"), "?", "?")
    } else {
        (String::new(), "$1", "$2")
    };
    let sql = format!(
        "SELECT {} FROM {DELIVERIES}{hint} WHERE status IN ('queued', 'retrying') \
         AND next_attempt_at <= {at} ORDER BY next_attempt_at LIMIT {n}",
        COLUMNS.join(", ")
    );
    let values = [
        to_millis(now).into(),
        i64::try_from(limit).unwrap_or(i64::MAX).into(),
    ];
    Statement::from_sql_and_values(backend, sql, values)
}

/// Milliseconds since the epoch, the stored form of every time.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, DbErr> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| DbErr::Type(format!("the stored time {ms} is out of range")))
}

fn bad(e: impl std::fmt::Display) -> DbErr {
    DbErr::Type(e.to_string())
}

pub(crate) fn record_from_row(row: &QueryResult) -> Result<DeliveryRecord, DbErr> {
    let id: String = row.try_get("", "id")?;
    let vars: String = row.try_get("", "vars")?;
    let vars: Map<String, Value> = serde_json::from_str(&vars).map_err(bad)?;
    let sent_at: Option<i64> = row.try_get("", "sent_at")?;
    let attempts: i32 = row.try_get("", "attempts")?;
    Ok(DeliveryRecord {
        id: id.parse().map_err(bad)?,
        template: Template::parse(&row.try_get::<String>("", "template")?).map_err(bad)?,
        locale: Locale::parse(&row.try_get::<String>("", "locale")?).map_err(bad)?,
        to: Recipient {
            email: Email::parse(row.try_get::<String>("", "to_email")?).map_err(bad)?,
            name: row.try_get("", "to_name")?,
        },
        vars,
        status: DeliveryStatus::from_db(&row.try_get::<String>("", "status")?)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: row.try_get("", "last_error")?,
        created_at: from_millis(row.try_get("", "created_at")?)?,
        sent_at: sent_at.map(from_millis).transpose()?,
        next_attempt_at: from_millis(row.try_get("", "next_attempt_at")?)?,
    })
}

/// Reads and updates delivery records.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// On an SQLite file, the thread that runs claims and outcomes (and inserts, through
    /// the batch writer) in shared transactions.
    writer: Option<SqliteWriter>,
}

impl Store {
    /// Wraps a connected, migrated database; every write goes through the pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, writer: None }
    }

    /// Wraps a connected, migrated database whose claims and outcomes go through `writer`.
    pub fn with_writer(db: DatabaseConnection, writer: Option<SqliteWriter>) -> Self {
        Self { db, writer }
    }

    /// The SQLite writer, when there is one.
    pub(crate) fn writer(&self) -> Option<&SqliteWriter> {
        self.writer.as_ref()
    }

    /// The connection, for the batch writer and health checks.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    fn select() -> SelectStatement {
        Query::select().columns(COLUMNS).from(DELIVERIES).to_owned()
    }

    /// The record of `id`, if stored.
    pub async fn get(&self, id: MailRequestId) -> Result<Option<DeliveryRecord>, DbErr> {
        let q = Self::select()
            .and_where(Expr::col("id").eq(id.to_string()))
            .to_owned();
        self.db
            .query_one(&q)
            .await?
            .map(|row| record_from_row(&row))
            .transpose()
    }

    /// One page of records, newest first, optionally only those with `status`.
    pub async fn list(
        &self,
        status: Option<DeliveryStatus>,
        page: u64,
        per_page: u64,
    ) -> Result<Page, DbErr> {
        let filter = |q: &mut SelectStatement| {
            match status {
                // `sending` is shown as `queued`, so a `queued` filter finds both.
                Some(DeliveryStatus::Queued) => {
                    q.and_where(Expr::col("status").is_in(["queued", "sending"]));
                }
                Some(s) => {
                    q.and_where(Expr::col("status").eq(s.as_db()));
                }
                None => {}
            };
        };
        let mut count = Query::select()
            .expr_as(Expr::col("id").count(), "n")
            .from(DELIVERIES)
            .to_owned();
        filter(&mut count);
        let total: i64 = match self.db.query_one(&count).await? {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        let mut q = Self::select();
        filter(&mut q);
        q.order_by("created_at", Order::Desc)
            .order_by("id", Order::Desc)
            .limit(per_page)
            .offset(page.saturating_sub(1).saturating_mul(per_page));
        let items = self
            .db
            .query_all(&q)
            .await?
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or(0),
            page,
            per_page,
        })
    }

    /// Up to `limit` records due for a try now (`queued`, or `retrying` whose time has
    /// come), oldest due first.
    ///
    /// Both backends read the partial index `mail_deliveries_due` in order and stop after
    /// `limit` rows ([`due_statement`]).
    pub async fn due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<DeliveryRecord>, DbErr> {
        let statement = due_statement(self.db.get_database_backend(), now, limit);
        self.db
            .query_all_raw(statement)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    /// At start: puts back every record a stopped process left `sending` (it died during
    /// the handoff) so it is sent again, and returns how many there were.
    pub async fn release_abandoned_claims(&self) -> Result<u64, DbErr> {
        let q = Query::update()
            .table(DELIVERIES)
            .value("status", "queued")
            .value("next_attempt_at", to_millis(Utc::now()))
            .and_where(Expr::col("status").eq("sending"))
            .to_owned();
        Ok(self.db.execute(&q).await?.rows_affected())
    }

    /// Claims `record` for one SMTP handoff: true when this caller moved it to `sending`.
    /// The claim also checks `attempts`, so a stale copy of a record (queued twice, or
    /// read before its last try) never claims it. It is one conditional `UPDATE`: on
    /// PostgreSQL the row lock makes a second claimer see the new status and match nothing;
    /// on SQLite writes are serialised by the database lock, so the same holds.
    pub async fn claim(&self, record: &DeliveryRecord) -> Result<bool, DbErr> {
        let q = Query::update()
            .table(DELIVERIES)
            .value("status", "sending")
            .and_where(Expr::col("id").eq(record.id.to_string()))
            .and_where(Expr::col("status").is_in(["queued", "retrying"]))
            .and_where(Expr::col("attempts").eq(i64::from(record.attempts)))
            .to_owned();
        Ok(self.db.execute(&q).await?.rows_affected() == 1)
    }

    /// Records the outcome of one try.
    pub async fn finish_attempt(
        &self,
        id: MailRequestId,
        status: DeliveryStatus,
        attempts: u32,
        error: Option<&str>,
        at: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let mut q = Query::update();
        q.table(DELIVERIES)
            .value("status", status.as_db())
            .value("attempts", i64::from(attempts))
            .value("last_error", error.map(str::to_string))
            .value("next_attempt_at", to_millis(next_attempt_at))
            .and_where(Expr::col("id").eq(id.to_string()));
        if status == DeliveryStatus::Sent {
            // A sent mail keeps no `vars`: they are only needed to render it again.
            q.value("sent_at", to_millis(at)).value("vars", "{}");
        }
        self.db.execute(&q).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paging through due work reads the partial index in the order of the next try and
    /// stops at the limit: one index search, and no sort of every due row (which is what
    /// SQLite's planner did with the `(status, …)` indexes).
    #[tokio::test]
    async fn sqlite_pages_through_due_work_on_its_partial_index() {
        let db = super::super::connect("sqlite::memory:")
            .await
            .expect("an in-memory store");
        let due = due_statement(DbBackend::Sqlite, Utc::now(), 512);
        let plan = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", due.sql),
            ..due
        };
        let steps: Vec<String> = db
            .query_all_raw(plan)
            .await
            .expect("the plan")
            .iter()
            .map(|row| row.try_get("", "detail").expect("a detail column"))
            .collect();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(
            steps[0].contains(&format!("USING INDEX {DUE_INDEX} (next_attempt_at<?)")),
            "{steps:?}"
        );
    }
}
