//! `GET /users/{id}/sessions`, `DELETE /users/{id}/sessions/{session_id}` and
//! `DELETE /session`: a user's active sessions, and ending them. Ending deletes the row, so
//! the token is refused at once by every process on the database.

use crate::auth::Caller;
use crate::entities::{session, user};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::session_store;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// One active session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionItem {
    id: Uuid,
    created_at: DateTime<Utc>,
    /// When a request last used it, to the minute.
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// The client address that opened it.
    client: Option<String>,
    /// The `User-Agent` that opened it.
    user_agent: Option<String>,
    /// True for the session of the token that asks.
    current: bool,
}

/// A user's active sessions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionList {
    items: Vec<SessionItem>,
}

/// A time stored as milliseconds since the epoch.
pub(super) fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `GET /users/{id}/sessions`: the user's unexpired sessions, oldest first.
#[utoipa::path(get, path = "/users/{id}/sessions", tag = "sessions",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "the user's active sessions", body = SessionList),
        (status = 400, description = "the id is not a UUID", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user", body = super::openapi::ErrorBody)))]
pub(crate) async fn list_sessions(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SessionList>, ApiError> {
    caller.may_act_on(id)?;
    let rows = session_store::active_of(&state.db, id).await?;
    if rows.is_empty() && caller.session().is_none() {
        user_must_exist(&state, id).await?;
    }
    let current = caller.session().map(|own| own.session);
    let items = rows
        .into_iter()
        .map(|row: session::Model| SessionItem {
            id: row.id,
            created_at: time_of(row.created_at_ms),
            last_used_at: time_of(row.last_used_at_ms),
            expires_at: time_of(row.expires_at_ms),
            client: row.client,
            user_agent: row.user_agent,
            current: Some(row.id) == current,
        })
        .collect();
    Ok(Json(SessionList { items }))
}

/// `DELETE /users/{id}/sessions/{session_id}`: ends one session of the user.
#[utoipa::path(delete, path = "/users/{id}/sessions/{session_id}", tag = "sessions",
    params(("id" = Uuid, Path), ("session_id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "the session is ended"),
        (status = 400, description = "an id is not a UUID", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user, or no active session of this id", body = super::openapi::ErrorBody)))]
pub(crate) async fn end_session(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath((id, session_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.may_act_on(id)?;
    if !session_store::end(&state.db, id, session_id).await? {
        return Err(ApiError::NotFound("session not found"));
    }
    tracing::info!(user_id = %id, session_id = %session_id, "session ended");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /session`: ends the caller's own session (log out).
#[utoipa::path(delete, path = "/session", tag = "sessions",
    security(("bearer" = [])),
    responses((status = 204, description = "the caller's session is ended"),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "the admin token, which is no session", body = super::openapi::ErrorBody)))]
pub(crate) async fn end_own_session(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    let own = caller.session().ok_or(ApiError::Forbidden(
        "the admin token is no session; log out with a session token",
    ))?;
    // A concurrent end of the same session is not an error: it is ended either way.
    session_store::end(&state.db, own.user.id, own.session).await?;
    tracing::info!(user_id = %own.user.id, session_id = %own.session, "session ended");
    Ok(StatusCode::NO_CONTENT)
}

async fn user_must_exist(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    user::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound("user not found"))
}
