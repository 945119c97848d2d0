//! Connecting to the users database (SQLite or PostgreSQL, chosen by the URL) and migrating it.

use crate::migration::Migrator;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Opens the pool and brings the schema up to date.
pub(crate) async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    domain::config::create_sqlite_folder(url).map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut options = ConnectOptions::new(url.to_owned());
    // sea-orm gives SQLite a pool of one connection unless told otherwise; readers then queue
    // behind every writer. WAL lets readers work while one writer commits.
    options
        .max_connections(if url.starts_with("sqlite") { 8 } else { 16 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}
