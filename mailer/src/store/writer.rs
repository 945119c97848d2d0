//! The store's one write path, chosen once when the store connects: the SQLite writer for an
//! SQLite file, the pool for PostgreSQL and in-memory SQLite (whose database lives inside the
//! pool's one connection, out of another connection's reach).

use super::pool_writer::PoolWriter;
use super::rows::{Claimed, Cursors, Finished, Inserted, Operated, Operation};
use super::sqlite_file::{SqliteWriter, WriteCounters};
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

/// Where inserts, claims and outcomes go.
#[derive(Clone)]
pub(crate) enum Writer {
    /// One statement per batch through the pool.
    Pool(PoolWriter),
    /// Every write in shared transactions on the file's own connection.
    SqliteFile(SqliteWriter),
}

impl Writer {
    /// The writer for `url`, whose schema `db` has brought up to date.
    pub(crate) async fn open(
        url: &str,
        db: &DatabaseConnection,
        counters: WriteCounters,
    ) -> Result<Self, MailError> {
        match domain::config::sqlite_file(url) {
            Some(path) => Ok(Self::SqliteFile(SqliteWriter::start(&path, counters)?)),
            None => Ok(Self::Pool(PoolWriter::start(db.clone()).await?)),
        }
    }

    pub(crate) async fn insert(
        &self,
        request: MailRequest,
        sender: Option<String>,
    ) -> Result<Inserted, MailError> {
        match self {
            Self::Pool(w) => w.insert(request, sender).await,
            Self::SqliteFile(w) => w.insert(request, sender).await,
        }
    }

    pub(crate) async fn claim_due(
        &self,
        ids: &[MailRequestId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, MailError> {
        match self {
            Self::Pool(w) => w.claim_due(ids, now).await,
            Self::SqliteFile(w) => w.claim_due(ids, now).await,
        }
    }

    pub(crate) async fn finish(&self, outcomes: Vec<Finished>) -> Result<Cursors, MailError> {
        match self {
            Self::Pool(w) => w.finish(&outcomes).await,
            Self::SqliteFile(w) => w.finish(outcomes).await,
        }
    }

    pub(crate) async fn operate(&self, operation: Operation) -> Result<Operated, MailError> {
        match self {
            Self::Pool(w) => w.operate(operation).await,
            Self::SqliteFile(w) => w.operate(operation).await,
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
            Self::SqliteFile(_) => Gathering {
                claims: Duration::ZERO,
                outcomes: Duration::ZERO,
            },
        }
    }
}
