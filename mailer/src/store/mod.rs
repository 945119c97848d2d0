//! The delivery store: one row per mail request id, on SQLite or PostgreSQL (sea-orm).
//!
//! - [`migration`]: the schema, applied at start.
//! - [`records`]: reading and moving delivery records through their statuses.
//! - [`batch_writer`]: the single task that stores incoming requests in batches.
//!
//! The request id is the primary key, so "at most one mail per id" starts here: a second
//! insert of the same id changes nothing and is answered `duplicate`.

pub mod batch_writer;
pub mod migration;
pub mod records;

pub use batch_writer::{BatchWriter, StoreOutcome};
pub use records::{DeliveryRecord, DeliveryStatus, Page, Store};

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Connects to `url` and brings the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // WAL lets readers (GET /mails) run while the batch writer writes; NORMAL
        // synchronous is durable across process crashes, which is what a restart needs.
        .map_sqlx_sqlite_opts(|o| {
            o.pragma("journal_mode", "WAL")
                .pragma("synchronous", "NORMAL")
                .busy_timeout(Duration::from_secs(10))
        });
    let db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    Ok(db)
}
