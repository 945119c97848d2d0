//! For tests: what SQLite's planner does with a statement, on an in-memory database with the
//! mailer's schema.

use super::migration::Migrator;
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::MigratorTrait;

/// The `detail` lines of `EXPLAIN QUERY PLAN` for `statement`.
pub(crate) async fn sqlite_plan(statement: Statement) -> Vec<String> {
    let db = sea_orm::Database::connect("sqlite::memory:")
        .await
        .expect("an in-memory database");
    Migrator::up(&db, None).await.expect("the schema");
    let plan = Statement {
        sql: format!("EXPLAIN QUERY PLAN {}", statement.sql),
        ..statement
    };
    db.query_all_raw(plan)
        .await
        .expect("the plan")
        .iter()
        .map(|row| row.try_get("", "detail").expect("a detail column"))
        .collect()
}
