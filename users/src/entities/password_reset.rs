//! The `password_resets` table: reset tokens, stored as their SHA-256 only.

use sea_orm::entity::prelude::*;

/// One reset token.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    /// Hex SHA-256 of the token; the token itself is only in the mail.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// Whose password the token resets (deleted with the user).
    pub user_id: Uuid,
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
