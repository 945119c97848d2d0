//! Runs the store's statements ([`crate::store::statements`]) on the writer's rusqlite
//! connection: each is built for SQLite, prepared once per SQL text (the connection keeps
//! the prepared statements), and its values bound as they are.

use crate::store::statements::OneRow;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql};
use sea_orm::sea_query::{QueryStatementWriter, SqliteQueryBuilder, Value};

/// Runs `statement` and returns the rows it changed.
pub(super) fn execute(
    connection: &Connection,
    statement: &impl QueryStatementWriter,
) -> rusqlite::Result<usize> {
    let (sql, values) = statement.build(SqliteQueryBuilder);
    execute_sql(connection, &sql, &values.0)
}

/// Runs `statement` and reads each row it returns with `read`.
pub(super) fn query<T>(
    connection: &Connection,
    statement: &impl QueryStatementWriter,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let (sql, values) = statement.build(SqliteQueryBuilder);
    query_sql(connection, &sql, &values.0, read)
}

/// Runs `row` (see [`OneRow`]) and returns the rows it changed.
pub(super) fn execute_one(connection: &Connection, row: &OneRow) -> rusqlite::Result<usize> {
    execute_sql(connection, row.sql, &row.values)
}

/// Runs `row` and reads each row it returns with `read`.
pub(super) fn query_one<T>(
    connection: &Connection,
    row: &OneRow,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    query_sql(connection, row.sql, &row.values, read)
}

fn execute_sql(connection: &Connection, sql: &str, values: &[Value]) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(values.iter().map(Param)))
}

fn query_sql<T>(
    connection: &Connection,
    sql: &str,
    values: &[Value],
    mut read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut prepared = connection.prepare_cached(sql)?;
    let mut rows = prepared.query(rusqlite::params_from_iter(values.iter().map(Param)))?;
    let mut read_rows = Vec::new();
    while let Some(row) = rows.next()? {
        read_rows.push(read(row)?);
    }
    Ok(read_rows)
}

/// One bound value. The store binds text, integers and nulls; any other kind is refused
/// rather than stored in a form the pool would not read back.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Bool(v) => integer(v.map(i64::from)),
            Value::TinyInt(v) => integer(v.map(i64::from)),
            Value::SmallInt(v) => integer(v.map(i64::from)),
            Value::Int(v) => integer(v.map(i64::from)),
            Value::BigInt(v) => integer(*v),
            Value::TinyUnsigned(v) => integer(v.map(i64::from)),
            Value::SmallUnsigned(v) => integer(v.map(i64::from)),
            Value::Unsigned(v) => integer(v.map(i64::from)),
            Value::String(v) => ToSqlOutput::Borrowed(match v {
                Some(text) => ValueRef::Text(text.as_bytes()),
                None => ValueRef::Null,
            }),
            Value::Bytes(v) => ToSqlOutput::Borrowed(match v {
                Some(bytes) => ValueRef::Blob(bytes),
                None => ValueRef::Null,
            }),
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("the store does not bind {other:?}").into(),
                ));
            }
        })
    }
}

fn integer<'a>(n: Option<i64>) -> ToSqlOutput<'a> {
    ToSqlOutput::Owned(n.map_or(
        rusqlite::types::Value::Null,
        rusqlite::types::Value::Integer,
    ))
}
