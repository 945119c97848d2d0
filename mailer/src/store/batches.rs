//! The delivery loop's writes, batched: claiming a page of records in one statement, and
//! recording many outcomes in one statement per group of equal outcomes. Each single-row
//! write costs a hand-off to the database driver; measured (`docs/benchmarks/mailer.md`),
//! those hand-offs were most of the mailer's CPU per mail.

use super::migration::DELIVERIES;
use super::records::{DeliveryStatus, Store, to_millis};
use chrono::{DateTime, Utc};
use domain::MailRequestId;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

/// One row a claim took: its id and its tries so far, as stored. The rest of a record never
/// changes after it is stored, so the dispatcher keeps its own copy instead of reading the
/// whole row (the `vars` JSON included) back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    /// The request id.
    pub id: MailRequestId,
    /// SMTP tries before this one.
    pub attempts: u32,
}

fn claimed_from_row(row: &QueryResult) -> Result<Claimed, DbErr> {
    let id: String = row.try_get("", "id")?;
    let attempts: i32 = row.try_get("", "attempts")?;
    Ok(Claimed {
        id: id
            .parse()
            .map_err(|e: domain::Invalid| DbErr::Type(e.to_string()))?,
        attempts: u32::try_from(attempts).map_err(|e| DbErr::Type(e.to_string()))?,
    })
}

impl Store {
    /// Claims, in one `UPDATE … RETURNING`, those of `ids` that are due now (`queued`, or
    /// `retrying` whose time has come), now `sending`, and returns which were claimed. Copies
    /// of a record queued twice, or read before its last try, claim nothing: the status or
    /// the time no longer matches. On PostgreSQL the row lock makes a second claimer see
    /// the new status; on SQLite writes are serialised by the database lock.
    pub async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(writer) = self.writer() {
            return writer.claim_due(ids.to_vec(), now).await;
        }
        if self.db().get_database_backend() == DbBackend::Sqlite {
            return self.claim_due_sqlite(ids, now).await;
        }
        let q = Query::update()
            .table(DELIVERIES)
            .value("status", "sending")
            .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
            .and_where(Expr::col("status").is_in(["queued", "retrying"]))
            .and_where(Expr::col("next_attempt_at").lte(to_millis(now)))
            .returning(Query::returning().columns(["id", "attempts"]))
            .to_owned();
        self.db()
            .query_all(&q)
            .await?
            .iter()
            .map(claimed_from_row)
            .collect()
    }

    /// The same claim for SQLite, written by hand: without statistics, SQLite's planner
    /// chose the `(status, next_attempt_at)` index over the primary key for this `UPDATE`,
    /// and scanned every queued row per claim (measured: about 1,000 instead of 5,500
    /// mails/s with a backlog of 66,000; see `docs/benchmarks/mailer.md`). A unary `+` keeps
    /// those columns off the index, so the lookup is by id.
    async fn claim_due_sqlite(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "UPDATE {DELIVERIES} SET status = 'sending' WHERE id IN ({marks}) \
             AND +status IN ('queued', 'retrying') AND +next_attempt_at <= ? RETURNING id, attempts"
        );
        let mut values: Vec<Value> = ids.iter().map(|id| id.to_string().into()).collect();
        values.push(to_millis(now).into());
        let statement = Statement::from_sql_and_values(DbBackend::Sqlite, sql, values);
        self.db()
            .query_all_raw(statement)
            .await?
            .iter()
            .map(claimed_from_row)
            .collect()
    }

    /// Records one outcome for every id in `ids`, in one statement.
    pub async fn finish_many(
        &self,
        ids: &[MailRequestId],
        status: DeliveryStatus,
        attempts: u32,
        error: Option<&str>,
        at: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(writer) = self.writer() {
            return writer
                .finish_many(ids, status, attempts, error, at, next_attempt_at)
                .await;
        }
        let mut q = Query::update();
        q.table(DELIVERIES)
            .value("status", status.as_db())
            .value("attempts", i64::from(attempts))
            .value("last_error", error.map(str::to_string))
            .value("next_attempt_at", to_millis(next_attempt_at))
            .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())));
        if status == DeliveryStatus::Sent {
            // A sent mail keeps no `vars`: they are only needed to render it again.
            q.value("sent_at", to_millis(at)).value("vars", "{}");
        }
        self.db().execute(&q).await?;
        Ok(())
    }
}
