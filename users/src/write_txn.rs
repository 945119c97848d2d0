//! Opening a write transaction, and reading a unique-index violation as a 409.

use crate::error::ApiError;
use crate::migration::{EMAIL_KEY_INDEX, LOGIN_INDEX};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: it takes the
/// write lock at once, so it waits (busy timeout) instead of failing with SQLITE_BUSY when it
/// would later upgrade a read lock. PostgreSQL ignores the mode.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// A 409 naming the field when `err` is a unique violation on login or email (its
/// canonical key); else the error as it is.
pub(crate) fn taken_or_internal(err: DbErr) -> ApiError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        // PostgreSQL names the index, SQLite names table.column.
        if message.contains(LOGIN_INDEX) || message.contains("users.login") {
            return ApiError::Taken("login");
        }
        if message.contains(EMAIL_KEY_INDEX) || message.contains("users.email_key") {
            return ApiError::Taken("email");
        }
    }
    ApiError::from(err)
}
