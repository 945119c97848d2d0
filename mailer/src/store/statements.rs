//! Every write of the store, built here once with sea-query and run by whichever engine the
//! store was opened with: the sea-orm pool on PostgreSQL ([`super::pool_writer`]), rusqlite
//! on SQLite ([`super::sqlite_file`]). A new column or write is added here, for every backend.
//!
//! The engines differ only in how many rows one statement carries and in where a change's
//! cursor comes from ([`Numbering`]): PostgreSQL stores the requests that arrived together in
//! one statement and numbers them from a sequence; the SQLite writer runs one statement per
//! row inside its shared transaction and numbers each change itself.

use super::migration::{
    CURSOR_LOCK_FILTER, DELIVERIES, LOCKED_NEXT_CURSOR, NEXT_CURSOR, REPORTS, SUPPRESSIONS,
};
use super::rows::{
    COLUMNS, ERASED_REASON, Finished, NewReport, NewSuppression, suppressed_error, to_millis,
};
use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use sea_orm::sea_query::{
    DeleteStatement, Expr, ExprTrait, InsertStatement, OnConflict, Query, QueryStatementWriter,
    ReturningClause, SelectStatement, SqliteQueryBuilder, UpdateStatement, Value,
};
use std::sync::LazyLock;

/// Where the cursor of a change comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// The database's only writer (SQLite) numbers changes itself: this change's cursor.
    Given(i64),
    /// PostgreSQL: the next value of the sequence, taken under the cursor lock, so that
    /// cursors are committed in their order (see the migration that adds cursors).
    Sequence,
}

impl Numbering {
    /// Sets `cursor` in `update`, which changes rows the outside sees; from the sequence, the
    /// statement first takes the cursor lock.
    fn set(self, update: &mut UpdateStatement) {
        match self {
            Numbering::Given(cursor) => {
                update.value("cursor", cursor);
            }
            Numbering::Sequence => {
                update
                    .value("cursor", Expr::cust(NEXT_CURSOR))
                    .and_where(Expr::cust(CURSOR_LOCK_FILTER));
            }
        }
    }

    /// The value of `cursor` for the row at `position` of an insert: from the sequence, the
    /// first row takes the cursor lock (the rows of `VALUES` are computed in their order).
    fn value(self, position: usize) -> Expr {
        match self {
            Numbering::Given(cursor) => Expr::val(cursor),
            Numbering::Sequence if position == 0 => Expr::cust(LOCKED_NEXT_CURSOR),
            Numbering::Sequence => Expr::cust(NEXT_CURSOR),
        }
    }
}

/// One request to store.
pub(crate) struct NewDelivery<'a> {
    pub(crate) request: &'a MailRequest,
    /// The socket id of the service client that sent it, if one did.
    pub(crate) sender: Option<&'a str>,
    /// Why its recipient is on the suppression list, when it is: it is stored `suppressed`,
    /// without its `vars` (it will never be rendered).
    pub(crate) suppressed: Option<&'a str>,
    /// When it is stored, which is also when it is due.
    pub(crate) at: DateTime<Utc>,
    pub(crate) cursor: Numbering,
}

/// What PostgreSQL's insert and finish return: the `id, cursor` of each row they changed,
/// since its sequence numbers them. The SQLite writer numbers rows itself and counts the
/// rows changed instead, which spares SQLite the table a `RETURNING` clause fills.
pub(crate) fn returning_cursors() -> ReturningClause {
    Query::returning().columns(["id", "cursor"])
}

/// A write of the SQLite writer's hot path (a mail's insert, claim and outcome, and the
/// suppression look-up) for one row: the SQL text its builder here makes, the same for every
/// row and so built once, and this row's values in their order in it. Building the statement
/// for each row cost the writer more than binding it. A test holds each to its builder.
pub(crate) struct OneRow {
    pub(crate) sql: &'static str,
    pub(crate) values: Vec<Value>,
}

/// The SQLite text of `statement`, whose values are placeholders.
fn sqlite_text(statement: &impl QueryStatementWriter) -> String {
    statement.build(SqliteQueryBuilder).0
}

/// Where the cursor is among a delivery's values.
const CURSOR_VALUE: usize = 11;

/// The values of one delivery to store, in the order of its columns (every column but
/// `sent_at`); the cursor's place holds `cursor`.
fn delivery_values(row: &NewDelivery<'_>, cursor: Value) -> Result<Vec<Value>, MailError> {
    let r = row.request;
    let (status, vars) = match row.suppressed {
        Some(_) => (DeliveryStatus::Suppressed, "{}".to_string()),
        None => (
            DeliveryStatus::Queued,
            serde_json::to_string(&r.vars).map_err(|e| MailError::Write(e.to_string()))?,
        ),
    };
    let at = to_millis(row.at);
    let values = vec![
        r.id.to_string().into(),
        r.template.as_str().into(),
        r.locale.as_str().into(),
        r.to.email.as_str().into(),
        r.to.name.clone().into(),
        vars.into(),
        status.as_db().into(),
        0i32.into(),
        row.suppressed.map(suppressed_error).into(),
        at.into(),
        at.into(),
        cursor,
        row.sender.map(str::to_string).into(),
        r.traceparent.clone().into(),
        i32::from(r.erase_recipient).into(),
        to_millis(r.requested_at).into(),
    ];
    debug_assert!(matches!(values[CURSOR_VALUE], Value::BigInt(_)));
    Ok(values)
}

/// The insert of `rows` of values (see [`delivery_values`]), each unless its id is stored.
fn insert_rows(rows: Vec<Vec<Expr>>) -> Result<InsertStatement, MailError> {
    let mut q = Query::insert();
    // Every column but `sent_at`, in the order of the values.
    q.into_table(DELIVERIES)
        .columns(COLUMNS.into_iter().filter(|c| *c != "sent_at"));
    for row in rows {
        q.values(row).map_err(|e| MailError::Write(e.to_string()))?;
    }
    q.on_conflict(OnConflict::column("id").do_nothing().to_owned());
    Ok(q)
}

/// Stores `rows`, each unless its id is stored already.
pub(crate) fn insert_deliveries(rows: &[NewDelivery<'_>]) -> Result<InsertStatement, MailError> {
    let mut exprs = Vec::with_capacity(rows.len());
    for (position, row) in rows.iter().enumerate() {
        let mut values: Vec<Expr> = delivery_values(row, Value::BigInt(None))?
            .into_iter()
            .map(Expr::val)
            .collect();
        values[CURSOR_VALUE] = row.cursor.value(position);
        exprs.push(values);
    }
    insert_rows(exprs)
}

/// [`insert_deliveries`] of the one `row`, for SQLite, which numbers its changes itself.
pub(crate) fn insert_delivery(row: &NewDelivery<'_>) -> Result<OneRow, MailError> {
    let Numbering::Given(cursor) = row.cursor else {
        return Err(MailError::Write(
            "a row for SQLite needs its cursor given".into(),
        ));
    };
    static SQL: LazyLock<Result<String, String>> = LazyLock::new(|| {
        let placeholders = vec![Expr::val(Value::BigInt(None)); COLUMNS.len() - 1];
        insert_rows(vec![placeholders])
            .map(|q| sqlite_text(&q))
            .map_err(|e| e.to_string())
    });
    let sql = SQL.as_deref().map_err(|e| MailError::Write(e.clone()))?;
    Ok(OneRow {
        sql,
        values: delivery_values(row, Value::BigInt(Some(cursor)))?,
    })
}

/// Claims those of `ids` that are due at `now` (`queued`, or `retrying` whose time has
/// come), now `sending`, and returns their `id, attempts`. A claim numbers nothing: the
/// outside still sees the mail `queued`.
///
/// The row is found by its id alone: `status` and `next_attempt_at` are compared as
/// expressions, which no index covers. Without statistics, SQLite's planner may otherwise
/// take an index on either (the partial index `mail_deliveries_due` covers both) over the
/// primary key for this `UPDATE`, and scan every due row per claim.
pub(crate) fn claim(ids: &[MailRequestId], now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(DELIVERIES)
        .value("status", DeliveryStatus::Sending.as_db())
        .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
        .and_where(Expr::cust("(status || '')").is_in(due_statuses()))
        .and_where(Expr::cust("(next_attempt_at + 0)").lte(to_millis(now)))
        .returning(Query::returning().columns(["id", "attempts"]))
        .to_owned()
}

/// [`claim`] of the one `id`, for SQLite.
pub(crate) fn claim_one(id: MailRequestId, now: DateTime<Utc>) -> OneRow {
    static SQL: LazyLock<String> =
        LazyLock::new(|| sqlite_text(&claim(&[MailRequestId::new()], Utc::now())));
    let [queued, retrying] = due_statuses();
    OneRow {
        sql: &SQL,
        values: vec![
            DeliveryStatus::Sending.as_db().into(),
            id.to_string().into(),
            queued.into(),
            retrying.into(),
            to_millis(now).into(),
        ],
    }
}

/// The statuses a claim takes, and so the ones a cancel may stop: of a cancel and a claim,
/// exactly one finds the row.
fn due_statuses() -> [&'static str; 2] {
    [
        DeliveryStatus::Queued.as_db(),
        DeliveryStatus::Retrying.as_db(),
    ]
}

/// Records `outcome` for `ids` (the deliveries that ended the same way). Writing the same
/// outcome twice changes nothing but the cursor.
pub(crate) fn finish(
    outcome: &Finished,
    ids: &[MailRequestId],
    cursor: Numbering,
) -> UpdateStatement {
    let mut q = Query::update();
    q.table(DELIVERIES)
        .value("status", outcome.status.as_db())
        .value("attempts", i64::from(outcome.attempts))
        .value("last_error", outcome.error.clone())
        .value("next_attempt_at", to_millis(outcome.next_attempt_at))
        .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())));
    if let Some(sent_at) = outcome.sent_at_millis() {
        // A sent mail keeps no `vars`: they are only needed to render it again.
        q.value("sent_at", sent_at).value("vars", "{}");
    }
    cursor.set(&mut q);
    q
}

/// [`finish`] of one delivery, numbered `cursor`, for SQLite.
pub(crate) fn finish_one(outcome: &Finished, cursor: i64) -> OneRow {
    static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
        let shape = |status| {
            let outcome = Finished {
                id: MailRequestId::new(),
                status,
                attempts: 1,
                error: None,
                at: Utc::now(),
                next_attempt_at: Utc::now(),
                suppress: None,
            };
            sqlite_text(&finish(&outcome, &[outcome.id], Numbering::Given(0)))
        };
        [shape(DeliveryStatus::Failed), shape(DeliveryStatus::Sent)]
    });
    let mut values: Vec<Value> = vec![
        outcome.status.as_db().into(),
        i64::from(outcome.attempts).into(),
        outcome.error.clone().into(),
        to_millis(outcome.next_attempt_at).into(),
    ];
    let sent_at = outcome.sent_at_millis();
    if let Some(sent_at) = sent_at {
        values.push(sent_at.into());
        values.push("{}".into());
    }
    values.push(cursor.into());
    values.push(outcome.id.to_string().into());
    OneRow {
        sql: &SQL[usize::from(sent_at.is_some())],
        values,
    }
}

/// Puts those of `ids` still `failed` back to `queued`, due at `now`, and returns the `id` of
/// each it moved: a copy that raced with another retry changes nothing. With `sender`, that
/// socket becomes the one that hears the mails' next statuses.
pub(crate) fn requeue(
    ids: &[MailRequestId],
    now: DateTime<Utc>,
    sender: Option<&str>,
    cursor: Numbering,
) -> UpdateStatement {
    let mut q = Query::update();
    q.table(DELIVERIES)
        .value("status", DeliveryStatus::Queued.as_db())
        .value("next_attempt_at", to_millis(now))
        .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
        .and_where(Expr::col("status").eq(DeliveryStatus::Failed.as_db()))
        .returning(Query::returning().column("id"));
    if let Some(sender) = sender {
        q.value("sender", sender);
    }
    cursor.set(&mut q);
    q
}

/// Makes the delivery `id` `cancelled` at `now` if it is `queued` or `retrying`; one row
/// changed when it did. A cancelled mail keeps no `vars`, as a sent one.
pub(crate) fn cancel(id: MailRequestId, now: DateTime<Utc>, cursor: Numbering) -> UpdateStatement {
    let mut q = Query::update();
    q.table(DELIVERIES)
        .value("status", DeliveryStatus::Cancelled.as_db())
        .value("vars", "{}")
        .value("next_attempt_at", to_millis(now))
        .and_where(Expr::col("id").eq(id.to_string()))
        .and_where(Expr::col("status").is_in(due_statuses()));
    cursor.set(&mut q);
    q
}

/// The `email_key, reason` of those of `keys` (lookup keys) on the suppression list.
pub(crate) fn suppression_reasons<'a>(keys: impl IntoIterator<Item = &'a str>) -> SelectStatement {
    Query::select()
        .columns(["email_key", "reason"])
        .from(SUPPRESSIONS)
        .and_where(Expr::col("email_key").is_in(keys))
        .to_owned()
}

/// [`suppression_reasons`] of the one lookup key `key`, for SQLite.
pub(crate) fn suppression_reason(key: &str) -> OneRow {
    static SQL: LazyLock<String> = LazyLock::new(|| sqlite_text(&suppression_reasons([""])));
    OneRow {
        sql: &SQL,
        values: vec![key.into()],
    }
}

/// Adds `suppression`, whose lookup key is `key`, unless its address is listed under any
/// spelling; one row changed when it was new, and the first entry stays.
pub(crate) fn add_suppression(
    suppression: &NewSuppression,
    key: &str,
) -> Result<InsertStatement, MailError> {
    let mut q = Query::insert();
    q.into_table(SUPPRESSIONS)
        .columns(["email", "email_key", "reason", "created_at"])
        .values([
            suppression.email.as_str().into(),
            key.into(),
            suppression.reason.clone().into(),
            to_millis(suppression.at).into(),
        ])
        .map_err(|e| MailError::Write(e.to_string()))?
        .on_conflict(OnConflict::column("email_key").do_nothing().to_owned());
    Ok(q)
}

/// Takes the address of lookup key `key` off the suppression list; one row changed when it
/// was on it.
pub(crate) fn remove_suppression(key: &str) -> DeleteStatement {
    Query::delete()
        .from_table(SUPPRESSIONS)
        .and_where(Expr::col("email_key").eq(key))
        .to_owned()
}

/// Keeps only the lookup key `key` of its entry (with its time): the address as written and
/// the first reason, which may quote it, go. One row changed when the entry held an address.
pub(crate) fn forget_suppressed_address(key: &str) -> UpdateStatement {
    Query::update()
        .table(SUPPRESSIONS)
        .value("email", Option::<String>::None)
        .value("reason", ERASED_REASON)
        .and_where(Expr::col("email_key").eq(key))
        .and_where(Expr::col("email").is_not_null())
        .to_owned()
}

/// Records `report` in its delivery's history.
pub(crate) fn insert_report(report: &NewReport) -> Result<InsertStatement, MailError> {
    let mut q = Query::insert();
    q.into_table(REPORTS)
        .columns(["id", "mail_id", "at", "kind", "status", "diagnostic"])
        .values([
            uuid::Uuid::new_v4().simple().to_string().into(),
            report.mail_id.to_string().into(),
            to_millis(report.at).into(),
            report.kind.as_str().into(),
            report.status.clone().into(),
            report.diagnostic.clone().into(),
        ])
        .map_err(|e| MailError::Write(e.to_string()))?;
    Ok(q)
}

/// Makes the delivery of `report` `status` (`bounced`, `complained`) if it is `sent`, with the
/// report's reason as its `last_error`; returns its `id, cursor` when it did. A delivery
/// reported twice changes once.
pub(crate) fn mark_reported(
    report: &NewReport,
    status: DeliveryStatus,
    cursor: Numbering,
) -> UpdateStatement {
    let mut q = Query::update();
    q.table(DELIVERIES)
        .value("status", status.as_db())
        .value("last_error", report.reason.clone())
        .and_where(Expr::col("id").eq(report.mail_id.to_string()))
        .and_where(Expr::col("status").eq(DeliveryStatus::Sent.as_db()))
        .returning(returning_cursors());
    cursor.set(&mut q);
    q
}

/// Deletes the deliveries `ids` (retention, erasure); the count of rows is what it did.
pub(crate) fn delete_deliveries(ids: &[MailRequestId]) -> DeleteStatement {
    Query::delete()
        .from_table(DELIVERIES)
        .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
        .to_owned()
}

/// Puts back every record a stopped process left `sending`, due at `now` (at start, through
/// the pool). Nothing the outside sees changes: `sending` shows as `queued`.
pub(crate) fn release_claims(now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(DELIVERIES)
        .value("status", DeliveryStatus::Queued.as_db())
        .value("next_attempt_at", to_millis(now))
        .and_where(Expr::col("status").eq(DeliveryStatus::Sending.as_db()))
        .to_owned()
}

/// The last cursor given (`last`), for a writer that numbers changes itself.
pub(crate) fn last_cursor() -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("cursor").max().if_null(0), "last")
        .from(DELIVERIES)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;
    use sea_orm::sea_query::Values;

    /// The SQLite writer's one-row writes run exactly what their builders make.
    #[test]
    fn each_one_row_write_is_its_builders_statement() {
        let same = |built: (String, Values), one: OneRow| {
            assert_eq!(built.0, one.sql);
            assert_eq!(built.1.0, one.values);
        };
        let mut request = crate::store::test_request("ada@example.com");
        request.vars.insert("firstName".into(), "Ada".into());
        request.traceparent =
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let now = Utc::now();
        for (suppressed, sender) in [(None, None), (Some("bounced"), Some("socket-1"))] {
            let row = NewDelivery {
                request: &request,
                sender,
                suppressed,
                at: now,
                cursor: Numbering::Given(42),
            };
            same(
                insert_deliveries(std::slice::from_ref(&row))
                    .expect("built")
                    .build(SqliteQueryBuilder),
                insert_delivery(&row).expect("built"),
            );
        }
        same(
            claim(&[request.id], now).build(SqliteQueryBuilder),
            claim_one(request.id, now),
        );
        for (status, error) in [
            (DeliveryStatus::Sent, None),
            (DeliveryStatus::Retrying, Some("SMTP: 451".to_string())),
            (DeliveryStatus::Failed, Some("SMTP: 550".to_string())),
        ] {
            let outcome = Finished {
                id: request.id,
                status,
                attempts: 2,
                error,
                at: now,
                next_attempt_at: now,
                suppress: None,
            };
            same(
                finish(&outcome, &[outcome.id], Numbering::Given(7)).build(SqliteQueryBuilder),
                finish_one(&outcome, 7),
            );
        }
        same(
            suppression_reasons(["k1"]).build(SqliteQueryBuilder),
            suppression_reason("k1"),
        );
    }

    /// The claim finds its rows by id, whatever the other indexes: one search of the primary
    /// key, and no scan of the due rows, for one id (the SQLite writer's) as for several.
    #[tokio::test]
    async fn the_sqlite_claim_looks_rows_up_by_id() {
        for ids in [
            vec![MailRequestId::new()],
            vec![MailRequestId::new(), MailRequestId::new()],
        ] {
            let claim = DbBackend::Sqlite.build(&claim(&ids, Utc::now()));
            let steps = super::super::query_plan::sqlite_plan(claim).await;
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
}
