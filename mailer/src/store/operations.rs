//! What operators do with deliveries (behind `Store`'s methods of the same names): retry a
//! `failed` one (one by id, or every one a filter matches, a page per transaction), cancel a
//! `queued` or `retrying` one, and keep the suppression list. The writes go through the
//! store's one writer as one conditional statement each, so a cancel racing with a claim, or two retries of one mail, have one
//! winner decided by the database; the reads that decide 404 or 409 are on the pool.

use super::migration::{DELIVERIES, SUPPRESSIONS};
use super::reads;
use super::rows::{
    COLUMNS, DeliveryRecord, NewSuppression, Operated, Operation, Suppression, SuppressionPage,
    parse_id, record_from_row, suppression_from_row, to_millis,
};
use super::status::DeliveryStatus;
use super::suppression_key::SuppressionKeys;
use super::writer::Writer;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{Email, MailRequestId, Template};
use sea_orm::sea_query::{Cond, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::HashSet;

/// Which `failed` deliveries a bulk retry takes.
#[derive(Debug, Clone, Default)]
pub struct RetryFilter {
    /// Only this template.
    pub template: Option<Template>,
    /// Only this recipient, however it is spelt (compared by canonical key).
    pub to: Option<Email>,
    /// Only those stored before this time.
    pub before: Option<DateTime<Utc>>,
}

/// Where a bulk retry stopped: the last delivery it looked at, in `(created_at, id)` order.
/// Paging by position rather than by offset means a mail that failed again meanwhile, or
/// one skipped because its address is suppressed, is not looked at twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryCursor {
    created_at: i64,
    id: String,
}

/// One page of a bulk retry.
#[derive(Debug, Clone)]
pub struct RetriedPage {
    /// The deliveries put back to `queued`, as stored after the retry.
    pub retried: Vec<DeliveryRecord>,
    /// Where the next page starts; `None` once every match has been looked at.
    pub next: Option<RetryCursor>,
}

fn conflict(code: &'static str, message: String) -> MailError {
    MailError::Conflict { code, message }
}

/// Puts the `failed` delivery `id` back to `queued`, due now, and returns its record.
/// 404 when unknown; 409 `not_retryable` in any other status, `suppressed` when its
/// recipient is on the suppression list (it would be refused again: remove the address
/// first). Its tries go on counting, and its request id, so its Message-ID, stays.
/// With `sender`, that socket hears the mail's next statuses.
pub(crate) async fn retry(
    db: &DatabaseConnection,
    writer: &Writer,
    keys: &SuppressionKeys,
    id: MailRequestId,
    now: DateTime<Utc>,
    sender: Option<String>,
) -> Result<DeliveryRecord, MailError> {
    let record = reads::get(db, id).await?.ok_or(MailError::NotFound(id))?;
    if record.status != DeliveryStatus::Failed {
        return Err(not_retryable(record.status));
    }
    if suppression(db, &keys.lookup_key(&record.to.email))
        .await?
        .is_some()
    {
        let address = record.to.email.canonical();
        return Err(conflict(
            "suppressed",
            format!(
                "{address} is on the suppression list; remove it (DELETE /suppressions/{address}) \
                 before retrying."
            ),
        ));
    }
    match writer
        .operate(Operation::Requeue(vec![id], now, sender))
        .await?
    {
        Operated::Moved(moved) if moved.contains(&id) => {
            reads::get(db, id).await?.ok_or(MailError::NotFound(id))
        }
        // Another retry won the race.
        _ => {
            let status = reads::get(db, id)
                .await?
                .ok_or(MailError::NotFound(id))?
                .status;
            Err(not_retryable(status))
        }
    }
}

/// Retries up to `limit` of the `failed` deliveries `filter` matches, after `after`, in
/// one transaction. Deliveries whose recipient is suppressed are skipped (they stay
/// `failed`).
pub(crate) async fn retry_page(
    db: &DatabaseConnection,
    writer: &Writer,
    keys: &SuppressionKeys,
    filter: &RetryFilter,
    after: Option<&RetryCursor>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<RetriedPage, MailError> {
    let candidates = failed_page(db, filter, after, limit).await?;
    let next = (candidates.len() as u64 == limit)
        .then(|| candidates.last().map(|c| c.cursor.clone()))
        .flatten();
    let wanted_to = filter.to.as_ref().map(Email::canonical);
    let candidates: Vec<(Candidate, String)> = candidates
        .into_iter()
        .filter(|c| wanted_to.is_none_or(|to| to == c.email.canonical()))
        .map(|c| {
            let key = keys.lookup_key(&c.email);
            (c, key)
        })
        .collect();
    let suppressed =
        suppressed_keys(db, candidates.iter().map(|(_, k)| k.clone()).collect()).await?;
    let ids: Vec<MailRequestId> = candidates
        .into_iter()
        .filter(|(_, key)| !suppressed.contains(key))
        .map(|(c, _)| c.id)
        .collect();
    let moved = match writer.operate(Operation::Requeue(ids, now, None)).await? {
        Operated::Moved(moved) => moved,
        _ => Vec::new(),
    };
    Ok(RetriedPage {
        retried: records(db, &moved).await?,
        next,
    })
}

/// Cancels the `queued` or `retrying` delivery `id` and returns its record. 404 when
/// unknown; 409 `not_cancellable` otherwise (one being handed to SMTP included).
pub(crate) async fn cancel(
    db: &DatabaseConnection,
    writer: &Writer,
    id: MailRequestId,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, MailError> {
    let cancelled = writer.operate(Operation::Cancel(id, now)).await? == Operated::Changed(true);
    let record = reads::get(db, id).await?.ok_or(MailError::NotFound(id))?;
    if cancelled {
        return Ok(record);
    }
    let why = match record.status {
        DeliveryStatus::Sending => "it is being handed to the SMTP server".to_string(),
        status => format!("it is {}", status.as_public()),
    };
    Err(conflict(
        "not_cancellable",
        format!("Only a queued or retrying mail can be cancelled; {why}."),
    ))
}

/// Puts `email` on the suppression list with `reason`; returns its entry and whether it
/// is new (an address listed already, under any spelling, keeps its first entry).
pub(crate) async fn suppress(
    db: &DatabaseConnection,
    writer: &Writer,
    keys: &SuppressionKeys,
    email: &Email,
    reason: String,
    now: DateTime<Utc>,
) -> Result<(Suppression, bool), MailError> {
    let added = writer
        .operate(Operation::Suppress(NewSuppression::new(email, reason, now)))
        .await?
        == Operated::Changed(true);
    let entry = suppression(db, &keys.lookup_key(email))
        .await?
        .ok_or_else(|| {
            MailError::Corrupt(format!(
                "{} was suppressed but cannot be read back",
                email.canonical()
            ))
        })?;
    Ok((entry, added))
}

/// Takes `email`, spelt any way, off the suppression list; false when it was not on it.
pub(crate) async fn unsuppress(
    writer: &Writer,
    keys: &SuppressionKeys,
    email: &Email,
) -> Result<bool, MailError> {
    let key = keys.lookup_key(email);
    Ok(writer.operate(Operation::Unsuppress(key)).await? == Operated::Changed(true))
}

/// The suppression-list entry of lookup key `key`, if any.
pub(crate) async fn suppression(
    db: &DatabaseConnection,
    key: &str,
) -> Result<Option<Suppression>, MailError> {
    let q = Query::select()
        .columns(["email", "reason", "created_at"])
        .from(SUPPRESSIONS)
        .and_where(Expr::col("email_key").eq(key))
        .to_owned();
    db.query_one(&q)
        .await?
        .map(|row| suppression_from_row(&row))
        .transpose()
}

/// One page of the suppression list, newest first.
pub(crate) async fn suppressions(
    db: &DatabaseConnection,
    page: u64,
    per_page: u64,
) -> Result<SuppressionPage, MailError> {
    let count = Query::select()
        .expr_as(Expr::col("email_key").count(), "n")
        .from(SUPPRESSIONS)
        .to_owned();
    let total: i64 = match db.query_one(&count).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    let q = Query::select()
        .columns(["email", "reason", "created_at"])
        .from(SUPPRESSIONS)
        .order_by("created_at", Order::Desc)
        .order_by("email_key", Order::Asc)
        .limit(per_page)
        .offset(page.saturating_sub(1).saturating_mul(per_page))
        .to_owned();
    let items = db
        .query_all(&q)
        .await?
        .iter()
        .map(suppression_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SuppressionPage {
        items,
        total: u64::try_from(total).unwrap_or(0),
        page,
        per_page,
    })
}

fn not_retryable(status: DeliveryStatus) -> MailError {
    conflict(
        "not_retryable",
        format!(
            "Only a failed mail can be retried; it is {}.",
            status.as_public()
        ),
    )
}

/// A `failed` delivery a bulk retry may take.
struct Candidate {
    id: MailRequestId,
    email: Email,
    cursor: RetryCursor,
}

/// Up to `limit` `failed` deliveries matching `filter`, after `after`, in `(created_at, id)`
/// order, on the `(status, created_at)` index.
async fn failed_page(
    db: &DatabaseConnection,
    filter: &RetryFilter,
    after: Option<&RetryCursor>,
    limit: u64,
) -> Result<Vec<Candidate>, MailError> {
    let mut q = Query::select();
    q.columns(["id", "to_email", "created_at"])
        .from(DELIVERIES)
        .and_where(Expr::col("status").eq(DeliveryStatus::Failed.as_db()));
    if let Some(template) = &filter.template {
        q.and_where(Expr::col("template").eq(template.as_str()));
    }
    // `to` is applied by the caller, on the canonical key, which SQL cannot compute.
    if let Some(before) = filter.before {
        q.and_where(Expr::col("created_at").lt(to_millis(before)));
    }
    if let Some(after) = after {
        q.cond_where(
            Cond::any()
                .add(Expr::col("created_at").gt(after.created_at))
                .add(
                    Cond::all()
                        .add(Expr::col("created_at").eq(after.created_at))
                        .add(Expr::col("id").gt(after.id.clone())),
                ),
        );
    }
    q.order_by("created_at", Order::Asc)
        .order_by("id", Order::Asc)
        .limit(limit);
    let mut candidates = Vec::new();
    for row in db.query_all(&q).await? {
        let id: String = row.try_get("", "id")?;
        let email: String = row.try_get("", "to_email")?;
        let created_at: i64 = row.try_get("", "created_at")?;
        let email = Email::parse(email).map_err(|e| MailError::Corrupt(e.to_string()))?;
        candidates.push(Candidate {
            id: parse_id(&id)?,
            email,
            cursor: RetryCursor { created_at, id },
        });
    }
    Ok(candidates)
}

/// Those of `keys` (lookup keys) on the suppression list.
async fn suppressed_keys(
    db: &DatabaseConnection,
    keys: HashSet<String>,
) -> Result<HashSet<String>, MailError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let q = Query::select()
        .column("email_key")
        .from(SUPPRESSIONS)
        .and_where(Expr::col("email_key").is_in(keys))
        .to_owned();
    let mut found = HashSet::new();
    for row in db.query_all(&q).await? {
        found.insert(row.try_get("", "email_key")?);
    }
    Ok(found)
}

/// The records of `ids`, in no particular order.
async fn records(
    db: &DatabaseConnection,
    ids: &[MailRequestId],
) -> Result<Vec<DeliveryRecord>, MailError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = Query::select()
        .columns(COLUMNS)
        .from(DELIVERIES)
        .and_where(Expr::col("id").is_in(ids.iter().map(|id| id.to_string())))
        .to_owned();
    db.query_all(&q)
        .await?
        .iter()
        .map(record_from_row)
        .collect()
}
