//! The delivery store: one row per mail request id, on SQLite or PostgreSQL (sea-orm).
//!
//! - [`migration`]: the schema, applied at start.
//! - [`records`]: reading and moving delivery records through their statuses.
//! - [`status`]: the statuses a delivery goes through.
//! - [`batch_writer`]: the single task that stores incoming requests in batches.
//! - [`sqlite_writer`]: on an SQLite file, the thread that runs the hot writes (inserts,
//!   claims, outcomes) together in shared transactions.
//!
//! The request id is the primary key, so "at most one mail per id" starts here: a second
//! insert of the same id changes nothing and is answered `duplicate`.

pub mod batch_writer;
mod batches;
pub mod migration;
pub mod records;
pub mod sqlite_writer;
pub mod status;

pub use batch_writer::{BatchWriter, StoreOutcome};
pub use batches::Claimed;
pub use records::{DeliveryRecord, DeliveryStatus, Page, Store};
pub use sqlite_writer::SqliteWriter;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Connects to `url` and brings the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    domain::config::prepare_sqlite_file(url).map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut options = ConnectOptions::new(url.to_string());
    // SQLite has one writer. With several pooled connections, concurrent writers wait
    // inside SQLite's busy handler, which sleeps in steps of up to 100 ms; one connection
    // queues them in the pool instead, without sleeping. PostgreSQL locks rows and takes
    // concurrent writers well.
    let sqlite = url.starts_with("sqlite:");
    options
        .max_connections(if sqlite { 1 } else { 8 })
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings a connection each time it leaves the pool: for SQLite that is one more
        // round trip to the connection's thread per statement, and a file cannot go stale
        // the way a network connection can. PostgreSQL keeps the check.
        .test_before_acquire(!sqlite)
        .sqlx_logging(false)
        // WAL lets readers (GET /mails) run while the batch writer writes. FULL: a commit
        // this connection makes (the schema, putting back abandoned claims) is on disk
        // before it returns, like the writer's (see `sqlite_writer`).
        .map_sqlx_sqlite_opts(|o| {
            o.pragma("journal_mode", "WAL")
                .pragma("synchronous", "FULL")
                .busy_timeout(Duration::from_secs(10))
        });
    let db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    Ok(db)
}
