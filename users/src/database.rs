//! Connecting to the users database (SQLite or PostgreSQL, chosen by the URL) and migrating it.
//!
//! SQLite runs with `synchronous=FULL`: in WAL mode, `NORMAL` may lose the last commits on an
//! OS crash or power loss, and each commit here may carry a mail request already answered
//! for. The file is created empty, readable by its owner only, before SQLite opens it; SQLite
//! gives its `-wal` and `-shm` files the same permissions.

use crate::migration::Migrator;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Opens the pool and brings the schema up to date.
pub(crate) async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    domain::config::prepare_sqlite_file(url).map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut options = ConnectOptions::new(url.to_owned());
    // sea-orm gives SQLite a pool of one connection unless told otherwise; readers then queue
    // behind every writer. WAL lets readers work while one writer commits.
    options
        .max_connections(if domain::config::is_sqlite(url) {
            8
        } else {
            16
        })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    #[tokio::test]
    async fn sqlite_commits_are_synced_in_full() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
        let db = connect_and_migrate(&url).await.expect("database");
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA synchronous",
            ))
            .await
            .expect("pragma")
            .expect("a row");
        // 2 is FULL.
        assert_eq!(row.try_get_by_index::<i32>(0).expect("a number"), 2);
    }
}
