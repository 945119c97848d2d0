//! `POST /authenticate`: a login and a password for a session valid one hour, recorded as a
//! row of `sessions` (see `session_store`).
//!
//! An unknown login is checked against a dummy hash with the same parameters, so it costs
//! one Argon2id verification like a wrong password, and both get the same 401.
//!
//! Failures are limited per login and per client: a failure of each is reserved before the
//! password is checked and given back when it was right, so once either has used its
//! failures every attempt is a 429 (the right password too), and concurrent guesses cost no
//! more checks than the failures left.
//!
//! With `users.require_verified_email`, the right password of an account whose address is
//! not proved gets 403 `email_not_verified` (not a failure: the password was right).

use crate::body_reader::BodyReader;
use crate::entities::{session, user};
use crate::error::ApiError;
use crate::extract::{ApiJson, JsonObject};
use crate::limits::ClientAddr;
use crate::session_store::{self, Opener};
use crate::state::AppState;
use crate::user_response::UserResponse;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An opened session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticateBody {
    /// `Authorization: Bearer <token>` on later requests.
    token: String,
    /// When the token stops working: `session.expires_at`, kept here for clients of the
    /// answer before sessions were records.
    expires_at: DateTime<Utc>,
    user: UserResponse,
    session: SessionRef,
}

/// The session a token names.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionRef {
    /// The id `GET /users/{id}/sessions` lists and `DELETE /users/{id}/sessions/{session_id}`
    /// takes.
    id: Uuid,
    /// When the token stops working.
    expires_at: DateTime<Utc>,
}

impl From<&session::Model> for SessionRef {
    fn from(row: &session::Model) -> Self {
        Self {
            id: row.id,
            expires_at: super::sessions::time_of(row.expires_at_ms),
        }
    }
}

/// `POST /authenticate`.
#[utoipa::path(post, path = "/authenticate", tag = "sessions",
    request_body(content = super::openapi::CredentialsDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "a session token", body = AuthenticateBody),
        (status = 400, description = "not a JSON object, or a field of the wrong type", body = super::openapi::ErrorBody),
        (status = 401, description = "`invalid_credentials`: an unknown login or a wrong password", body = super::openapi::ErrorBody),
        (status = 403, description = "`email_not_verified`: the password is right, but users.require_verified_email holds and the address is not proved", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "too many failures for this login or client; see Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): JsonObject,
) -> Result<Json<AuthenticateBody>, ApiError> {
    let mut fields = BodyReader::new(body, &["login", "password"]);
    let login = fields.required_string("login");
    let password = fields.required_string("password");
    fields.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::InvalidCredentials);
    };
    let attempt = state.limits.reserve_login_failure(&login, client)?;
    let found = user::Entity::find()
        .filter(user::Column::Login.eq(login.as_str()))
        .one(&state.db)
        .await?;
    let stored = found.as_ref().map(|u| u.password_hash.clone());
    let matches = state.hasher.verify(password, stored).await?;
    let user = match found {
        Some(user) if matches => user,
        _ => {
            attempt.failed();
            return Err(ApiError::InvalidCredentials);
        }
    };
    attempt.succeeded();
    if state.require_verified_email && user.email_verified_at.is_none() {
        tracing::info!(user_id = %user.id, "session refused: the address is not proved");
        return Err(ApiError::EmailNotVerified);
    }
    let opener = Opener {
        client: client.0.to_string(),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let opened = session_store::open(
        &state.db,
        &state.sessions,
        &user,
        &user.password_hash,
        opener,
    )
    .await?
    // The password changed between its check and the session's row.
    .ok_or(ApiError::InvalidCredentials)?;
    tracing::info!(user_id = %user.id, session_id = %opened.row.id, "session opened");
    let session = SessionRef::from(&opened.row);
    Ok(Json(AuthenticateBody {
        token: opened.token.token,
        expires_at: session.expires_at,
        user: user.into(),
        session,
    }))
}
