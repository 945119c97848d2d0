//! `POST /authenticate`: a login and a password for a session token valid one hour.
//!
//! An unknown login is checked against a dummy hash with the same parameters, so it costs
//! one Argon2id verification like a wrong password, and both get the same 401.
//!
//! With `users.require_verified_email`, the right password of an account whose address is
//! not proved gets 403 `email_not_verified` (not a failure: the password was right).
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
    request_body(content = serde_json::Value, description = "{login, password}"),
    responses((status = 200, body = SessionBody), (status = 400), (status = 401),
        (status = 403, description = "email_not_verified: the password is right, but users.require_verified_email holds and the address is not proved"),
        (status = 429, description = "too many failures for this login or client; see Retry-After"),
        (status = 503, description = "too many password hashes waiting; Retry-After: 1")))]
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
            if state.require_verified_email && user.email_verified_at.is_none() {
                tracing::info!(user_id = %user.id, "session refused: the address is not proved");
                return Err(ApiError::EmailNotVerified);
            }
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
