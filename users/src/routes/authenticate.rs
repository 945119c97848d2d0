//! `POST /authenticate`: a login and a password for a session token valid one hour.
//!
//! An unknown login is checked against a dummy hash with the same parameters, so it costs
//! one Argon2id verification like a wrong password, and both get the same 401.
//!
//! Failures are limited per login and per client: once either has used its failures, every
//! attempt is a 429 (the right password too), decided before any hash is computed.

use crate::body_reader::BodyReader;
use crate::entities::user;
use crate::error::ApiError;
use crate::extract::{ApiJson, JsonObject};
use crate::limits::ClientAddr;
use crate::state::AppState;
use crate::user_response::UserResponse;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionBody {
    /// `Authorization: Bearer <token>` on later requests.
    token: String,
    /// When the token stops working.
    expires_at: DateTime<Utc>,
    user: UserResponse,
}

/// `POST /authenticate`.
#[utoipa::path(post, path = "/authenticate", tag = "sessions",
    request_body(content = super::openapi::CredentialsDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "a session token", body = SessionBody),
        (status = 400, description = "not a JSON object, or a field of the wrong type", body = super::openapi::ErrorBody),
        (status = 401, description = "`invalid_credentials`: an unknown login or a wrong password", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "too many failures for this login or client; see Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): JsonObject,
) -> Result<Json<SessionBody>, ApiError> {
    let mut fields = BodyReader::new(body, &["login", "password"]);
    let login = fields.required_string("login");
    let password = fields.required_string("password");
    fields.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::InvalidCredentials);
    };
    state.limits.check_login(&login, client)?;
    let found = user::Entity::find()
        .filter(user::Column::Login.eq(login.as_str()))
        .one(&state.db)
        .await?;
    let stored = found.as_ref().map(|u| u.password_hash.clone());
    let matches = state.hasher.verify(password, stored).await?;
    match found {
        Some(user) if matches => {
            let (token, expires_at) =
                state
                    .sessions
                    .issue(user.id, &user.password_hash, Utc::now());
            tracing::info!(user_id = %user.id, "session opened");
            Ok(Json(SessionBody {
                token,
                expires_at,
                user: user.into(),
            }))
        }
        _ => {
            state.limits.record_login_failure(&login, client);
            Err(ApiError::InvalidCredentials)
        }
    }
}
