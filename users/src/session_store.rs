//! Session rows: opened by `POST /authenticate`, read with their user on every request that
//! carries a session token, ended by deleting them.
//!
//! - Checking a token is one read by primary key, joined with the user row the request needs
//!   anyway (in place on an SQLite file, see `user_reader`; through the pool otherwise).
//! - `last_used_at_ms` is written at most once a minute per session, after the answer's read,
//!   by a task of its own: a request never waits for that write.
//! - Expired rows are purged at write time: opening a session deletes every expired row in
//!   the same transaction (indexed on `expires_at_ms`).

use crate::entities::{session, user};
use crate::session::{NewToken, SESSION_LIFETIME, SessionKeys};
use crate::state::AppState;
use crate::user_reader;
use crate::write_txn::begin_write;
use chrono::Utc;
use sea_orm::ActiveModelTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use uuid::Uuid;

/// `last_used_at_ms` is not written again sooner than this after its last write.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Longest `User-Agent` kept, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Who opens a session, as its list will show it.
pub(crate) struct Opener {
    pub client: String,
    pub user_agent: Option<String>,
}

/// A session just opened.
pub(crate) struct Opened {
    pub token: NewToken,
    pub row: session::Model,
}

/// Opens a session for `user`, whose password was just checked against `verified_hash`.
/// `None` when the password changed meanwhile: the session would outlive the password it was
/// opened under.
pub(crate) async fn open(
    db: &DatabaseConnection,
    keys: &SessionKeys,
    user: &user::Model,
    verified_hash: &str,
    opener: Opener,
) -> Result<Option<Opened>, DbErr> {
    let now = Utc::now().timestamp_millis();
    let token = keys.issue();
    let row = session::Model {
        id: token.id,
        user_id: user.id,
        secret_hash: token.secret_hash.clone(),
        created_at_ms: now,
        last_used_at_ms: now,
        expires_at_ms: now + SESSION_LIFETIME.as_millis() as i64,
        client: Some(opener.client),
        user_agent: opener
            .user_agent
            .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect()),
    };
    let txn = begin_write(db).await?;
    // The shared lock (PostgreSQL; SQLite's write lock is already held) waits for a password
    // change in flight, which updates this row before it ends the user's sessions: either it
    // commits first and the hash differs, or it waits and then ends this session too.
    let current: Option<String> = user::Entity::find_by_id(user.id)
        .select_only()
        .column(user::Column::PasswordHash)
        .lock_shared()
        .into_tuple()
        .one(&txn)
        .await?;
    if current.as_deref() != Some(verified_hash) {
        txn.rollback().await?;
        return Ok(None);
    }
    session::Entity::delete_many()
        .filter(session::Column::ExpiresAtMs.lte(now))
        .exec(&txn)
        .await?;
    session::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(Opened { token, row }))
}

/// The session `id` and its user, read in place when the database allows it.
pub(crate) async fn find_with_user(
    state: &AppState,
    id: Uuid,
) -> Result<Option<(session::Model, user::Model)>, DbErr> {
    if let Some(found) = state
        .reader
        .as_deref()
        .and_then(|reader| reader.try_find_session(id))
    {
        return Ok(found);
    }
    let found = user_reader::session_with_user(id).one(&state.db).await?;
    Ok(found.and_then(|(session, user)| Some((session, user?))))
}

/// The sessions whose `last_used_at_ms` is being written, so that concurrent requests of one
/// session start one write, not one each.
#[derive(Default)]
pub(crate) struct Touches {
    writing: Mutex<HashSet<Uuid>>,
}

/// Records that `row` was used now, when its last record is a minute old or more; the write
/// runs on a task of its own and a failure is only logged.
pub(crate) fn touch(state: &AppState, row: &session::Model) {
    let now = Utc::now().timestamp_millis();
    if now - row.last_used_at_ms < TOUCH_EVERY_MS {
        return;
    }
    let id = row.id;
    let touches = state.session_touches.clone();
    if !touches
        .writing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id)
    {
        return;
    }
    let db = state.db.clone();
    tokio::spawn(async move {
        // Conditional, so that another process's write within the minute is not repeated.
        let written = session::Entity::update_many()
            .col_expr(session::Column::LastUsedAtMs, Expr::value(now))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::LastUsedAtMs.lte(now - TOUCH_EVERY_MS))
            .exec(&db)
            .await;
        if let Err(error) = written {
            tracing::warn!(%error, session_id = %id, "could not record a session's last use");
        }
        touches
            .writing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    });
}

/// The unexpired sessions of `user`, oldest first.
pub(crate) async fn active_of(
    db: &DatabaseConnection,
    user: Uuid,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::ExpiresAtMs.gt(Utc::now().timestamp_millis()))
        .order_by_asc(session::Column::CreatedAtMs)
        .order_by_asc(session::Column::Id)
        .all(db)
        .await
}

/// Ends the unexpired session `id` of `user`; false when there is none.
pub(crate) async fn end(db: &DatabaseConnection, user: Uuid, id: Uuid) -> Result<bool, DbErr> {
    let ended = session::Entity::delete_many()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::ExpiresAtMs.gt(Utc::now().timestamp_millis()))
        .exec(db)
        .await?;
    Ok(ended.rows_affected > 0)
}

/// Ends every session of `user`, inside the transaction that changes its password or
/// deletes it.
pub(crate) async fn end_all(txn: &impl ConnectionTrait, user: Uuid) -> Result<u64, DbErr> {
    let ended = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user))
        .exec(txn)
        .await?;
    Ok(ended.rows_affected)
}
