//! The store's one write path, chosen once when the store connects: the SQLite writer for an
//! SQLite database (a file, or in memory), the pool for PostgreSQL. Both run the statements of
//! [`super::statements`].

use super::pool_writer::PoolWriter;
use super::rows::{Claimed, Cursors, Finished, Inserted, Operated, Operation};
use super::sqlite_file::{Location, SqliteWriter, WriteCounters};
use super::suppression_key::SuppressionKeys;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{MailRequest, MailRequestId};
use sea_orm::DatabaseConnection;
use std::time::Duration;

/// How long the delivery loop lets writes gather before it hands them over, as the write
/// path prefers. A zero wait means one turn of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gathering {
    /// With every worker busy, how long the dispatcher waits for more to free up before a
    /// claim, so that one claim carries more rows.
    pub claims: Duration,
    /// How long a batch of outcomes waits for more before it is written.
    pub outcomes: Duration,
}

/// Where the store's database is, read once from its URL.
pub(crate) struct Database {
    /// The URL the pool connects to.
    pub(crate) pool_url: String,
    /// The SQLite database the SQLite writer writes; none on PostgreSQL.
    pub(crate) sqlite: Option<Location>,
}

impl Database {
    /// Where `url` points. An in-memory SQLite database gets a name of its own, under which
    /// the pool's connection and the writer's share it.
    pub(crate) fn of(url: &str) -> Self {
        if !domain::config::is_sqlite(url) {
            return Self {
                pool_url: url.to_string(),
                sqlite: None,
            };
        }
        match domain::config::sqlite_file(url) {
            Some(path) => Self {
                pool_url: url.to_string(),
                sqlite: Some(Location::File(path)),
            },
            None => {
                // A URI: SQLite shares the cache of an in-memory database only when it is
                // named by one.
                let name = format!("file:mailer-{}", uuid::Uuid::new_v4().simple());
                Self {
                    pool_url: format!("sqlite:{name}?mode=memory"),
                    sqlite: Some(Location::Memory(name)),
                }
            }
        }
    }
}

/// Where inserts, claims and outcomes go.
#[derive(Clone)]
pub(crate) enum Writer {
    /// PostgreSQL: one statement per batch through the pool.
    Pool(PoolWriter),
    /// SQLite: every write in shared transactions on the writer's own connection.
    Sqlite(SqliteWriter),
}

impl Writer {
    /// The writer for `database`, whose schema `db` has brought up to date.
    pub(crate) fn open(
        database: &Database,
        db: &DatabaseConnection,
        counters: WriteCounters,
        keys: SuppressionKeys,
    ) -> Result<Self, MailError> {
        match &database.sqlite {
            Some(location) => Ok(Self::Sqlite(SqliteWriter::start(location, counters, keys)?)),
            None => Ok(Self::Pool(PoolWriter::start(db.clone(), keys))),
        }
    }

    pub(crate) async fn insert(
        &self,
        request: MailRequest,
        sender: Option<String>,
    ) -> Result<Inserted, MailError> {
        match self {
            Self::Pool(w) => w.insert(request, sender).await,
            Self::Sqlite(w) => w.insert(request, sender).await,
        }
    }

    pub(crate) async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, MailError> {
        match self {
            Self::Pool(w) => w.claim_due(ids, now).await,
            Self::Sqlite(w) => w.claim_due(ids, now).await,
        }
    }

    pub(crate) async fn finish(&self, outcomes: Vec<Finished>) -> Result<Cursors, MailError> {
        match self {
            Self::Pool(w) => w.finish(&outcomes).await,
            Self::Sqlite(w) => w.finish(outcomes).await,
        }
    }

    pub(crate) async fn operate(&self, operation: Operation) -> Result<Operated, MailError> {
        match self {
            Self::Pool(w) => w.operate(operation).await,
            Self::Sqlite(w) => w.operate(operation).await,
        }
    }

    /// One statement through the pool costs about the same for one row as for many, so the
    /// pool is worth a short wait; the SQLite writer gathers whatever arrives while it
    /// commits, and a wait there only adds context switches.
    pub(crate) fn gathering(&self) -> Gathering {
        match self {
            Self::Pool(_) => Gathering {
                claims: Duration::from_micros(500),
                outcomes: Duration::from_millis(2),
            },
            Self::Sqlite(_) => Gathering {
                claims: Duration::ZERO,
                outcomes: Duration::ZERO,
            },
        }
    }
}
