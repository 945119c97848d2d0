//! Reads one user by id from an SQLite file on the thread that asks, instead of through sqlx,
//! which hands every query and row to a connection thread and back (docs/benchmarks/users.md).

use crate::entities::{session, user};
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use std::path::PathBuf;
use std::sync::Mutex;
use uuid::Uuid;

/// The user columns, in the order [`decode`] reads them.
macro_rules! user_columns {
    () => {
        "u.id, u.login, u.email, u.password_hash, u.first_name, u.last_name, u.company, \
         u.functions, u.locale, u.created_at, u.updated_at, u.email_key, u.email_verified_at"
    };
}
/// Columns of [`decode`].
const USER_COLUMNS: usize = 13;

/// One user by id.
const SELECT_USER: &str = concat!("SELECT ", user_columns!(), " FROM users u WHERE u.id = ?1");

/// One session by id with its user: the one read that checks a session token.
const SELECT_SESSION: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", s.id, s.secret_hash, s.created_at_ms, s.last_used_at_ms, s.expires_at_ms, s.client, \
     s.user_agent FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1"
);

/// Connections kept idle between reads; one per async worker is enough, as a read never waits.
const KEEP_IDLE: usize = 4;

/// A few read-only connections to the SQLite database file, used one at a time per read.
///
/// Blocking an async worker for one read is fine: in WAL mode a reader never waits for the
/// writer, and these connections have no busy timeout. When SQLite still answers "busy"
/// (briefly, around a checkpoint or a crash recovery), or anything else fails, the caller
/// reads through the pool instead. Each statement runs in a transaction of its own that starts
/// after it is issued, so a read sees every write committed before it.
pub(crate) struct UserReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl UserReader {
    /// A reader for `url`, or `None` when the database is not an SQLite file: PostgreSQL has
    /// no reader, nor has in-memory SQLite, where each connection would see its own empty
    /// database. The file is the one `domain::config::prepare_sqlite_file` created.
    pub(crate) fn for_database(url: &str) -> Option<UserReader> {
        if !domain::config::is_sqlite(url) {
            return None;
        }
        let path = domain::config::sqlite_file(url)?;
        Some(UserReader {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The user with this id, read on this thread; `Err` means "ask the pool instead".
    fn find(&self, id: Uuid) -> Result<Option<user::Model>, rusqlite::Error> {
        let connection = self.take()?;
        let found = connection
            .prepare_cached(SELECT_USER)
            .and_then(|mut statement| {
                statement
                    .query_row([id.as_bytes().as_slice()], decode)
                    .optional()
            });
        self.give_back(connection);
        found
    }

    /// The session with this id and its user, read on this thread.
    fn find_session(
        &self,
        id: Uuid,
    ) -> Result<Option<(session::Model, user::Model)>, rusqlite::Error> {
        let connection = self.take()?;
        let found = connection
            .prepare_cached(SELECT_SESSION)
            .and_then(|mut statement| {
                statement
                    .query_row([id.as_bytes().as_slice()], |row| {
                        Ok((decode_session(row, USER_COLUMNS)?, decode(row)?))
                    })
                    .optional()
            });
        self.give_back(connection);
        found
    }

    /// [`UserReader::find`], with a failure logged and turned into `None`: "ask the pool".
    pub(crate) fn try_find(&self, id: Uuid) -> Option<Option<user::Model>> {
        fallible(self.find(id))
    }

    /// [`UserReader::find_session`], with a failure logged and turned into `None`.
    pub(crate) fn try_find_session(
        &self,
        id: Uuid,
    ) -> Option<Option<(session::Model, user::Model)>> {
        fallible(self.find_session(id))
    }

    fn take(&self) -> Result<Connection, rusqlite::Error> {
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match kept {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP_IDLE
        {
            idle.push(connection);
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never write through this connection, never wait, and keep its page cache small:
        // a lookup by primary key touches a handful of pages.
        // synchronous=FULL like the pool's connections (see `database`), though this one only reads.
        connection.execute_batch(
            "PRAGMA query_only = ON; PRAGMA cache_size = -256; PRAGMA synchronous = FULL;",
        )?;
        connection.busy_timeout(std::time::Duration::ZERO)?;
        Ok(connection)
    }
}

/// A read's result, with a failure logged and turned into `None`: "ask the pool".
/// "busy" and "locked" are expected now and then and logged at debug only.
fn fallible<T>(read: Result<T, rusqlite::Error>) -> Option<T> {
    match read {
        Ok(found) => Some(found),
        Err(error) => {
            let busy = matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if busy {
                tracing::debug!(%error, "in-place read busy; reading through the pool");
            } else {
                tracing::warn!(%error, "in-place read failed; reading through the pool");
            }
            None
        }
    }
}

/// One `users` row as sea-orm's SQLite mapping stores it: the id as 16 bytes, `functions` as
/// JSON text, times as text.
fn decode(row: &Row<'_>) -> Result<user::Model, rusqlite::Error> {
    let id: Vec<u8> = row.get(0)?;
    let functions: String = row.get(7)?;
    Ok(user::Model {
        id: Uuid::from_slice(&id).map_err(|e| conversion(0, e))?,
        login: row.get(1)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        first_name: row.get(4)?,
        last_name: row.get(5)?,
        company: row.get(6)?,
        functions: serde_json::from_str(&functions).map_err(|e| conversion(7, e))?,
        locale: row.get(8)?,
        created_at: time(row, 9)?,
        updated_at: time(row, 10)?,
        email_key: row.get(11)?,
        email_verified_at: match row.get::<_, Option<String>>(12)? {
            Some(_) => Some(time(row, 12)?),
            None => None,
        },
    })
}

/// One `sessions` row whose columns start at `first`.
fn decode_session(row: &Row<'_>, first: usize) -> Result<session::Model, rusqlite::Error> {
    let id: Vec<u8> = row.get(first)?;
    let user_id: Vec<u8> = row.get(0)?;
    Ok(session::Model {
        id: Uuid::from_slice(&id).map_err(|e| conversion(first, e))?,
        user_id: Uuid::from_slice(&user_id).map_err(|e| conversion(0, e))?,
        secret_hash: row.get(first + 1)?,
        created_at_ms: row.get(first + 2)?,
        last_used_at_ms: row.get(first + 3)?,
        expires_at_ms: row.get(first + 4)?,
        client: row.get(first + 5)?,
        user_agent: row.get(first + 6)?,
    })
}

/// A time column: RFC 3339, or SQLite's `YYYY-MM-DD HH:MM:SS[.f][+HH:MM]` as sqlx writes it.
fn time(row: &Row<'_>, column: usize) -> Result<DateTime<Utc>, rusqlite::Error> {
    let text: String = row.get(column)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(&text)
        .or_else(|_| DateTime::parse_from_str(&text, "%F %T%.f%:z"))
    {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&text, "%F %T%.f")
        .map(|t| t.and_utc())
        .map_err(|e| conversion(column, e))
}

fn conversion(
    column: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::connect_and_migrate;
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    fn user(company: Option<&str>) -> user::Model {
        let email = format!("Reader{}@example.test", rand::random::<u32>());
        user::Model {
            id: Uuid::now_v7(),
            login: format!("reader{}", rand::random::<u32>()),
            email_key: email.to_lowercase(),
            email,
            password_hash: "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA".into(),
            first_name: "Zoé".into(),
            last_name: "Ünal".into(),
            company: company.map(str::to_owned),
            functions: serde_json::json!(["dev", "ops"]),
            locale: "en".into(),
            created_at: user::now(),
            updated_at: user::now() + chrono::Duration::microseconds(1),
            email_verified_at: None,
        }
    }

    async fn insert(db: &sea_orm::DatabaseConnection, row: &user::Model) {
        row.clone()
            .into_active_model()
            .insert(db)
            .await
            .expect("insert");
    }

    /// Rows written through sea-orm read back field for field, so the two mappings agree.
    #[tokio::test]
    async fn reads_what_sea_orm_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
        let db = connect_and_migrate(&url).await.expect("database");
        let reader = UserReader::for_database(&url).expect("a file database has a reader");
        for (company, verified) in [(None, false), (Some("ACME"), true)] {
            let mut written = user(company);
            if verified {
                written.email_verified_at = Some(user::now());
            }
            insert(&db, &written).await;
            assert_eq!(reader.find(written.id).expect("read"), Some(written));
        }
        assert_eq!(reader.find(Uuid::now_v7()).expect("read"), None);
    }

    /// A later commit through the pool is visible to the next in-place read.
    #[tokio::test]
    async fn sees_each_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
        let db = connect_and_migrate(&url).await.expect("database");
        let reader = UserReader::for_database(&url).expect("reader");
        let written = user(None);
        insert(&db, &written).await;
        assert_eq!(
            reader.find(written.id).expect("read"),
            Some(written.clone())
        );
        let mut change = written.clone().into_active_model();
        change.first_name = sea_orm::Set("Zora".into());
        change.update(&db).await.expect("update");
        let read = reader.find(written.id).expect("read").expect("found");
        assert_eq!(read.first_name, "Zora");
    }

    /// A session row and its user read back as sea-orm wrote them; an unknown id reads none.
    #[tokio::test]
    async fn reads_a_session_with_its_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
        let db = connect_and_migrate(&url).await.expect("database");
        let reader = UserReader::for_database(&url).expect("reader");
        let owner = user(Some("ACME"));
        insert(&db, &owner).await;
        let row = session::Model {
            id: Uuid::now_v7(),
            user_id: owner.id,
            secret_hash: "ab".repeat(32),
            created_at_ms: 1_700_000_000_000,
            last_used_at_ms: 1_700_000_060_000,
            expires_at_ms: 1_700_003_600_000,
            client: Some("192.0.2.1".into()),
            user_agent: None,
        };
        row.clone()
            .into_active_model()
            .insert(&db)
            .await
            .expect("insert");
        assert_eq!(
            reader.find_session(row.id).expect("read"),
            Some((row, owner))
        );
        assert_eq!(reader.find_session(Uuid::now_v7()).expect("read"), None);
    }

    #[test]
    fn only_sqlite_files_have_a_reader() {
        assert!(UserReader::for_database("postgres://localhost/test").is_none());
        assert!(UserReader::for_database("sqlite::memory:").is_none());
        assert!(UserReader::for_database("sqlite://shared?mode=memory&cache=shared").is_none());
        assert!(UserReader::for_database("sqlite://data/users.db?mode=rwc").is_some());
    }
}
