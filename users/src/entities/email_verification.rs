//! The `email_verifications` table: tokens that prove an address, stored as their SHA-256
//! only (see `tokens`).

use sea_orm::entity::prelude::*;

/// One verification token.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "email_verifications")]
pub struct Model {
    /// Hex SHA-256 of the token; the token itself is only in the mail.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// Whose address the token proves (deleted with the user).
    pub user_id: Uuid,
    /// The address the link was mailed to: the token proves this one only.
    pub email: String,
    /// When it was issued (ms since the epoch).
    pub created_at_ms: i64,
    /// Invalid from this time on (ms).
    pub expires_at_ms: i64,
    /// When it was used (ms); a token works once.
    pub used_at_ms: Option<i64>,
}

/// Navigation is not used; the foreign key lives in the migration.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
