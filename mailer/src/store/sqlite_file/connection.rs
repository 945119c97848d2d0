//! Opening the SQLite file for the writer and for the checkpoint thread.

use super::batch::note_wal_frames;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How long a write waits for the database lock held by another connection (the pool's).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the existing database file, used by one thread or task at a time.
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The writer's connection. WAL is a property of the file (set by the pool's connection);
/// `synchronous` is per connection: FULL makes each commit wait until the WAL is on disk,
/// which is what an `accepted` answer or an AMQP ack relies on. Checkpoints are the
/// checkpoint thread's, so a commit does not also copy the log.
pub(super) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = connect(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
    )?;
    // After the pragma: `wal_autocheckpoint` installs a WAL hook of its own.
    connection.wal_hook(Some(note_wal_frames));
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}
