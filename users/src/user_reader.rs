//! The two reads behind requests that name a user: one user by id (`GET /users/{id}`), and one
//! session by id with its user (each request with a session token).
//!
//! Each is one sea-orm query, defined here once. Through the pool, sea-orm runs and decodes
//! it. On an SQLite file the same statement also runs on the thread that asks, through a
//! rusqlite connection, because sqlx hands every query and row to a connection thread and
//! back: through the pool `GET /users/{id}` answered 8,917 requests/s against 35,814 in place
//! (docs/BENCHMARKS.md). Its rows are decoded by the entity's own column list and types, so a
//! new column needs no change here.

use crate::entities::{session, user};
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql};
use sea_orm::sea_query::Value;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, DatabaseBackend, EntityTrait, Iterable, QueryTrait,
    Select, SelectTwo, TryIntoModel,
};
use std::path::PathBuf;
use std::sync::Mutex;
use uuid::Uuid;

/// The user with this id.
pub(crate) fn user_by_id(id: Uuid) -> Select<user::Entity> {
    user::Entity::find_by_id(id)
}

/// The session with this id, and its user.
pub(crate) fn session_with_user(id: Uuid) -> SelectTwo<session::Entity, user::Entity> {
    session::Entity::find_by_id(id).find_also_related(user::Entity)
}

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
    /// The SQL text of [`user_by_id`] and of [`session_with_user`], built once: only the
    /// bound id changes from one read to the next.
    user_sql: String,
    session_sql: String,
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
        let sql = |statement: sea_orm::Statement| statement.sql;
        Some(UserReader {
            path,
            idle: Mutex::new(Vec::new()),
            user_sql: sql(user_by_id(Uuid::nil()).build(DatabaseBackend::Sqlite)),
            session_sql: sql(session_with_user(Uuid::nil()).build(DatabaseBackend::Sqlite)),
        })
    }

    /// The user with this id, read on this thread; `Err` means "ask the pool instead".
    fn find(&self, id: Uuid) -> Result<Option<user::Model>, rusqlite::Error> {
        self.read(&self.user_sql, id, |row| model::<user::Entity>(row, 0))
    }

    /// The session with this id and its user, read on this thread.
    fn find_session(
        &self,
        id: Uuid,
    ) -> Result<Option<(session::Model, user::Model)>, rusqlite::Error> {
        let found = self.read(&self.session_sql, id, |row| {
            let session = model::<session::Entity>(row, 0)?;
            // The user's columns follow the session's; a session without its user (which
            // the foreign key forbids) reads as no session, as through the pool.
            let first = session::Column::iter().count();
            if row.get_ref(first)? == ValueRef::Null {
                return Ok(None);
            }
            Ok(Some((session, model::<user::Entity>(row, first)?)))
        })?;
        Ok(found.flatten())
    }

    /// Runs `sql` with `id` as its one parameter and reads its first row with `decode`.
    fn read<T>(
        &self,
        sql: &str,
        id: Uuid,
        decode: impl FnOnce(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Option<T>, rusqlite::Error> {
        let connection = self.take()?;
        let id = Value::Uuid(Some(id));
        let found = connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row([Param(&id)], decode).optional());
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
        connection.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -256;")?;
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

/// The model of entity `E` whose columns start at `first`, in the entity's column order (the
/// order sea-orm selects them in), each read as its column type says.
fn model<E: EntityTrait>(row: &Row<'_>, first: usize) -> Result<E::Model, rusqlite::Error>
where
    E::ActiveModel: TryIntoModel<E::Model>,
{
    let mut active = <E::ActiveModel as ActiveModelTrait>::default();
    for (offset, column) in E::Column::iter().enumerate() {
        let index = first + offset;
        let value = value(row.get_ref(index)?, column.def().get_column_type())
            .map_err(|error| conversion(index, error))?;
        active
            .try_set(column, value)
            .map_err(|error| conversion(index, error))?;
    }
    active
        .try_into_model()
        .map_err(|error| conversion(first, error))
}

/// One column's stored value as the value sea-orm gives a field of that column type, in the
/// storage sqlx gives each type on SQLite: a UUID as its 16 bytes, JSON and times as text.
fn value(
    stored: ValueRef<'_>,
    column: &ColumnType,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let null = matches!(stored, ValueRef::Null);
    Ok(match column {
        ColumnType::Uuid => Value::Uuid(match stored {
            ValueRef::Null => None,
            other => Some(Uuid::from_slice(other.as_blob()?)?),
        }),
        ColumnType::Json | ColumnType::JsonBinary => Value::Json(match stored {
            ValueRef::Null => None,
            other => Some(Box::new(serde_json::from_slice(other.as_bytes()?)?)),
        }),
        ColumnType::TimestampWithTimeZone | ColumnType::DateTime | ColumnType::Timestamp => {
            Value::ChronoDateTimeUtc(match stored {
                ValueRef::Null => None,
                other => Some(time(other.as_str()?)?),
            })
        }
        ColumnType::BigInteger => Value::BigInt(if null { None } else { Some(stored.as_i64()?) }),
        ColumnType::Integer => Value::Int(if null {
            None
        } else {
            Some(i32::try_from(stored.as_i64()?)?)
        }),
        ColumnType::Boolean => Value::Bool(if null {
            None
        } else {
            Some(stored.as_i64()? != 0)
        }),
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => Value::String(if null {
            None
        } else {
            Some(stored.as_str()?.to_owned())
        }),
        other => return Err(format!("no in-place read of a {other:?} column").into()),
    })
}

/// A time as sqlx writes it on SQLite (`YYYY-MM-DD HH:MM:SS[.f][+HH:MM]`), or RFC 3339.
fn time(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%F %T%.f%:z"))
    {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%F %T%.f").map(|t| t.and_utc())
}

/// The bound id, stored as sqlx stores a UUID on SQLite.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self.0 {
            Value::Uuid(Some(id)) => Ok(ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes()))),
            other => Err(rusqlite::Error::ToSqlConversionFailure(
                format!("the reader binds a UUID, not {other:?}").into(),
            )),
        }
    }
}

fn conversion(
    column: usize,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, error.into())
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
