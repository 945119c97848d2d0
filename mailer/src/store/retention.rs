//! What retention and erasure read before they delete: the finished deliveries older than a
//! time, and every delivery addressed to one address under any spelling. The deletes go
//! through the store's one writer (`Operation::Delete`), a bounded batch at a time.

use super::migration::DELIVERIES;
use super::rows::{LastMail, from_millis, parse_id, to_millis};
use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{Email, MailRequestId};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// The statuses a delivery ends in: only these are deleted for their age. A `queued` or
/// `retrying` one, however old, still has a mail to send.
fn finished_statuses() -> [&'static str; 6] {
    [
        DeliveryStatus::Sent.as_db(),
        DeliveryStatus::Failed.as_db(),
        DeliveryStatus::Cancelled.as_db(),
        DeliveryStatus::Suppressed.as_db(),
        DeliveryStatus::Bounced.as_db(),
        DeliveryStatus::Complained.as_db(),
    ]
}

/// Up to `limit` finished deliveries stored before `before`.
pub(crate) async fn expired(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<MailRequestId>, MailError> {
    let q = Query::select()
        .column("id")
        .from(DELIVERIES)
        .and_where(Expr::col("created_at").lt(to_millis(before)))
        .and_where(Expr::col("status").is_in(finished_statuses()))
        .limit(limit)
        .to_owned();
    db.query_all(&q)
        .await?
        .iter()
        .map(|row| parse_id(&row.try_get::<String>("", "id")?))
        .collect()
}

/// The ended deliveries that asked for their recipient's erasure (an erasure the process
/// stopped before making).
pub(crate) async fn erasures_due(db: &DatabaseConnection) -> Result<Vec<LastMail>, MailError> {
    let q = Query::select()
        .columns(["id", "to_email", "created_at", "requested_at"])
        .from(DELIVERIES)
        .and_where(Expr::col("erase_recipient").eq(1))
        .and_where(Expr::col("status").is_in(finished_statuses()))
        .to_owned();
    db.query_all(&q)
        .await?
        .iter()
        .map(|row| {
            Ok(LastMail {
                id: parse_id(&row.try_get::<String>("", "id")?)?,
                to: Email::parse(row.try_get::<String>("", "to_email")?)
                    .map_err(|e| MailError::Corrupt(e.to_string()))?,
                requested_at: match row.try_get::<Option<i64>>("", "requested_at")? {
                    Some(ms) => from_millis(ms)?,
                    None => from_millis(row.try_get("", "created_at")?)?,
                },
            })
        })
        .collect()
}

/// Every delivery addressed to `email`, however it was spelt; with `requested_before`, only
/// those requested before that time (a record from before requests' times were kept counts
/// as requested when it was stored). The canonical form is not a column (SQL cannot compute
/// it), so the addresses are read a page at a time, in id order, and compared here.
pub(crate) async fn addressed_to(
    db: &DatabaseConnection,
    email: &Email,
    requested_before: Option<DateTime<Utc>>,
) -> Result<Vec<MailRequestId>, MailError> {
    const PAGE: u64 = 1000;
    let key = email.canonical();
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = Query::select();
        q.columns(["id", "to_email"])
            .from(DELIVERIES)
            .order_by("id", Order::Asc)
            .limit(PAGE);
        if let Some(after) = &after {
            q.and_where(Expr::col("id").gt(after.as_str()));
        }
        if let Some(before) = requested_before {
            q.and_where(
                Expr::col("requested_at")
                    .if_null(Expr::col("created_at"))
                    .lt(to_millis(before)),
            );
        }
        let rows = db.query_all(&q).await?;
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let to: String = row.try_get("", "to_email")?;
            // A stored address that no longer parses cannot be this one.
            if Email::parse(to).is_ok_and(|to| to.canonical() == key) {
                found.push(parse_id(&id)?);
            }
            after = Some(id);
        }
        if (rows.len() as u64) < PAGE {
            return Ok(found);
        }
    }
}
