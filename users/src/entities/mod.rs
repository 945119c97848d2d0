//! The sea-orm entities of the users database: one module per table.
//!
//! Times that the outbox and the link tokens compare in SQL are stored as milliseconds since
//! the Unix epoch (`*_ms`), so that the comparisons behave the same on SQLite, which keeps
//! timestamps as text, and on PostgreSQL.

pub mod email_verification;
pub mod outbox;
pub mod password_reset;
pub mod session;
pub mod user;
