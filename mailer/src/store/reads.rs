//! Reads of the delivery store, on the sea-orm pool for every backend: one record, a page of
//! records, and the due work the dispatcher pages through. Putting back abandoned claims at
//! start is here too: a rare write that needs no batching.

use super::migration::{DELIVERIES, DUE_INDEX, REPORTS};
use super::rows::{
    COLUMNS, Cursor, DeliveryRecord, DeliveryReport, Page, ReportKind, from_millis,
    record_from_row, to_millis,
};
use super::statements;
use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::MailRequestId;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

fn select() -> SelectStatement {
    Query::select().columns(COLUMNS).from(DELIVERIES).to_owned()
}

/// The record of `id`, if stored.
pub(crate) async fn get(
    db: &DatabaseConnection,
    id: MailRequestId,
) -> Result<Option<DeliveryRecord>, MailError> {
    let q = select()
        .and_where(Expr::col("id").eq(id.to_string()))
        .to_owned();
    let Some(mut record) = db
        .query_one(&q)
        .await?
        .map(|row| record_from_row(&row))
        .transpose()?
    else {
        return Ok(None);
    };
    // Only a delivered mail is reported on.
    if matches!(
        record.status,
        DeliveryStatus::Sent | DeliveryStatus::Bounced | DeliveryStatus::Complained
    ) {
        record.reports = reports(db, id).await?;
    }
    Ok(Some(record))
}

/// The reports sent back about delivery `id`, oldest first.
async fn reports(
    db: &DatabaseConnection,
    id: MailRequestId,
) -> Result<Vec<DeliveryReport>, MailError> {
    let q = Query::select()
        .columns(["kind", "status", "diagnostic", "at"])
        .from(REPORTS)
        .and_where(Expr::col("mail_id").eq(id.to_string()))
        .order_by("at", Order::Asc)
        .order_by("id", Order::Asc)
        .limit(100)
        .to_owned();
    let mut reports = Vec::new();
    for row in db.query_all(&q).await? {
        reports.push(DeliveryReport {
            kind: ReportKind::from_db(&row.try_get::<String>("", "kind")?),
            status: row.try_get("", "status")?,
            diagnostic: row.try_get("", "diagnostic")?,
            at: from_millis(row.try_get("", "at")?)?,
        });
    }
    Ok(reports)
}

/// One page of records, newest first, optionally only those with `status`.
pub(crate) async fn list(
    db: &DatabaseConnection,
    status: Option<DeliveryStatus>,
    page: u64,
    per_page: u64,
) -> Result<Page, MailError> {
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
    let total: i64 = match db.query_one(&count).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    let mut q = select();
    filter(&mut q);
    q.order_by("created_at", Order::Desc)
        .order_by("id", Order::Desc)
        .limit(per_page)
        .offset(page.saturating_sub(1).saturating_mul(per_page));
    let items = db
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

/// The deliveries whose last change came after `after`, oldest change first, at most
/// `limit`; without `after`, the `limit` latest. Each delivery appears once, with its state
/// now, because a change gives the row a new cursor.
pub(crate) async fn changes(
    db: &DatabaseConnection,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<DeliveryRecord>, MailError> {
    let mut q = select();
    match after {
        Some(after) => q
            .and_where(Expr::col("cursor").gt(after.0))
            .order_by("cursor", Order::Asc),
        None => q
            .and_where(Expr::col("cursor").is_not_null())
            .order_by("cursor", Order::Desc),
    };
    q.limit(limit);
    let mut records = db
        .query_all(&q)
        .await?
        .iter()
        .map(record_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if after.is_none() {
        records.reverse();
    }
    Ok(records)
}

/// The due-work query, written so that each backend reads the partial index
/// `mail_deliveries_due`:
/// - the statuses are written out, not bound: PostgreSQL matches a query's condition against
///   a partial index's when it plans the query, so a condition on bound parameters may not
///   use the index;
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

/// Up to `limit` records due for a try at `now` (`queued`, or `retrying` whose time has
/// come), oldest due first, read in order from the partial index ([`due_statement`]).
pub(crate) async fn due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DeliveryRecord>, MailError> {
    let statement = due_statement(db.get_database_backend(), now, limit);
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(record_from_row)
        .collect()
}

/// Puts back every record a stopped process left `sending` (it died during the handoff),
/// due now, and returns how many there were.
pub(crate) async fn release_abandoned_claims(db: &DatabaseConnection) -> Result<u64, MailError> {
    let q = statements::release_claims(Utc::now());
    Ok(db.execute(&q).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paging through due work reads the partial index in the order of the next try and
    /// stops at the limit: one index search, and no sort of every due row.
    #[tokio::test]
    async fn sqlite_pages_through_due_work_on_its_partial_index() {
        let due = due_statement(DbBackend::Sqlite, Utc::now(), 512);
        let steps = super::super::query_plan::sqlite_plan(due).await;
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(
            steps[0].contains(&format!("USING INDEX {DUE_INDEX} (next_attempt_at<?)")),
            "{steps:?}"
        );
    }
}
