//! Opening the SQLite database for the writer and for the checkpoint thread.

use super::batch::note_wal_frames;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a batch on a blocking thread waits for the database lock held by another
/// connection (the pool's).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite database the writer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A database file, which the pool created.
    File(PathBuf),
    /// An in-memory database, by the name under which the pool's connection shares its cache
    /// with the writer's (the database lives as long as one of them is open).
    Memory(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Memory(name) => write!(f, "the in-memory database {name}"),
        }
    }
}

/// A connection to the existing database file, used by one thread or task at a time.
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The writer's connection. WAL is a property of the file (set by the pool's connection);
/// `synchronous` is per connection: NORMAL, under which a commit writes the WAL without
/// waiting for the disk; the sync thread then syncs it before any answer (`super::syncs`),
/// which is what an `accepted` answer or an AMQP ack relies on. Checkpoints are the
/// checkpoint thread's, so a commit does not also copy the log. An in-memory database has
/// no log: the pragmas leave it as it is. `secure_delete`: a deleted or rewritten row's bytes
/// are overwritten, so that an erased address leaves no trace in the file.
pub(super) fn open(location: &Location) -> rusqlite::Result<Connection> {
    let connection = match location {
        Location::File(path) => connect(path)?,
        // The flags the pool's connection opened it with: the same name in a shared cache is
        // the same database. A lock held by the other connection is waited for with SQLite's
        // unlock notification.
        Location::Memory(name) => Connection::open_with_flags(
            name,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_MEMORY
                | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
        )?,
    };
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA secure_delete = ON;",
    )?;
    // After the pragma: `wal_autocheckpoint` installs a WAL hook of its own.
    connection.wal_hook(Some(note_wal_frames));
    // No waiting on the runtime's thread: a locked database sends the batch to a blocking
    // thread, which waits up to `BUSY_TIMEOUT` (`Writer::write_waiting`).
    connection.busy_timeout(Duration::ZERO)?;
    Ok(connection)
}
