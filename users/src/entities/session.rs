//! The `sessions` table: one row per session token handed out by `POST /authenticate`.

use sea_orm::entity::prelude::*;

/// One session. The row is the truth: a token whose row is gone or expired is refused.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// The session's id (UUIDv7), also the first part of its token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Whose session it is (deleted with the user).
    pub user_id: Uuid,
    /// Hex HMAC-SHA256 of the token's secret part under `users.session_secret`.
    pub secret_hash: String,
    /// When it was opened (ms since the epoch).
    pub created_at_ms: i64,
    /// When a request last used it (ms), written at most once a minute.
    pub last_used_at_ms: i64,
    /// Refused from this time on (ms).
    pub expires_at_ms: i64,
    /// The client address that opened it.
    pub client: Option<String>,
    /// The `User-Agent` that opened it, cut to a bounded length.
    pub user_agent: Option<String>,
}

/// A session belongs to its user: a token is checked with one read of both.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
