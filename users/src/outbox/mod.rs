//! The transactional outbox: mail requests are written in the same transaction as the change
//! that asks for them, then a relay publishes them through the [`transport::Transport`].
//!
//! - this module: [`enqueue`], called with the open transaction, and the backlog query;
//! - [`relay`]: claims due rows, publishes them, marks them published or schedules a retry
//!   (`runtime::backoff`, from 250 ms doubling up to 30 s).

pub(crate) mod relay;

use crate::entities::outbox;
use chrono::Utc;
use domain::MailRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, FromQueryResult,
    QueryFilter, QuerySelect,
};
use serde::Serialize;
use tracing::Instrument;

/// Milliseconds since the Unix epoch, the unit of the outbox's time columns.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Writes `request` into the outbox, inside the caller's transaction, with the trace context
/// of this write, which the relay's publish continues.
pub(crate) async fn enqueue(
    txn: &impl ConnectionTrait,
    request: &MailRequest,
) -> Result<(), DbErr> {
    let span = tracing::info_span!("Writing a mail request to the outbox", mail_id = %request.id);
    let traceparent = runtime::telemetry::context::traceparent(&span);
    insert(txn, request, traceparent).instrument(span).await
}

async fn insert(
    txn: &impl ConnectionTrait,
    request: &MailRequest,
    traceparent: Option<String>,
) -> Result<(), DbErr> {
    let now = now_ms();
    let payload = String::from_utf8(request.to_json())
        .map_err(|_| DbErr::Custom("a mail request serialized to invalid UTF-8".into()))?;
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(request.id.0),
        payload: Set(payload),
        created_at_ms: Set(now),
        next_attempt_at_ms: Set(now),
        claimed_until_ms: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        published_at_ms: Set(None),
        traceparent: Set(traceparent),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// What is waiting to be published.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    /// Mail requests not yet confirmed by the transport.
    pub pending: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub oldest_pending_seconds: f64,
}

#[derive(FromQueryResult)]
struct BacklogRow {
    pending: i64,
    oldest: Option<i64>,
}

/// Counts pending rows and finds the oldest.
pub(crate) async fn backlog(db: &impl ConnectionTrait) -> Result<Backlog, DbErr> {
    let row = outbox::Entity::find()
        .select_only()
        .column_as(Expr::col(outbox::Column::Id).count(), "pending")
        .column_as(Expr::col(outbox::Column::CreatedAtMs).min(), "oldest")
        .filter(outbox::Column::PublishedAtMs.is_null())
        .into_model::<BacklogRow>()
        .one(db)
        .await?;
    let (pending, oldest) = row.map(|r| (r.pending, r.oldest)).unwrap_or((0, None));
    let age_ms = oldest.map(|o| Ord::max(now_ms() - o, 0)).unwrap_or(0);
    Ok(Backlog {
        pending: u64::try_from(pending).unwrap_or(0),
        oldest_pending_seconds: age_ms as f64 / 1000.0,
    })
}
