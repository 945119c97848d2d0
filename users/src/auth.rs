//! Who is calling: the admin token, a session token, or nobody.
//!
//! [`Caller`] is an extractor, so a handler that takes one is protected: no token or a bad
//! one is a 401 before the handler runs. [`Caller::may_act_on`] is the 403 rule.

use crate::error::ApiError;
use crate::session::constant_time_eq;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

/// The authenticated caller of a protected route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The admin token: every right.
    Admin,
    /// A session token: rights on its own user only.
    User(Uuid),
}

impl Caller {
    /// Ok when the caller may read, change or delete `user`.
    pub fn may_act_on(self, user: Uuid) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::User(own) if own == user => Ok(()),
            Caller::User(_) => Err(ApiError::Forbidden),
        }
    }

    /// Ok for the admin only (listing every user).
    pub fn must_be_admin(self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::User(_) => Err(ApiError::Forbidden),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        if constant_time_eq(token.as_bytes(), state.admin_token.expose().as_bytes()) {
            return Ok(Caller::Admin);
        }
        state
            .sessions
            .verify(token, chrono::Utc::now())
            .map(Caller::User)
            .ok_or(ApiError::Unauthorized)
    }
}
