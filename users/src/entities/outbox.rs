//! The `outbox` table: mail requests written in the same transaction as the change that asks
//! for them, waiting for the relay to publish them.

use sea_orm::entity::prelude::*;

/// One mail request on its way to the transport.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// The mail request's id, also its idempotency key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The mail request as JSON text, exactly as it will be published; emptied once published.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// When the row was written (ms since the epoch).
    pub created_at_ms: i64,
    /// Not published before this time (ms), for backoff after a failure.
    pub next_attempt_at_ms: i64,
    /// A relay holds the row until this time (ms); afterwards another relay may take it.
    pub claimed_until_ms: Option<i64>,
    /// Failed publishes so far.
    pub attempts: i32,
    /// The last publish error, one sentence.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// When the transport confirmed it (ms); `NULL` while pending.
    pub published_at_ms: Option<i64>,
    /// The W3C `traceparent` of the span that wrote the row, which the relay's publish
    /// continues; `NULL` when the writer was not traced.
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
}

/// The outbox stands alone.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
