//! Who is calling: the admin token, a session token, or nobody.
//!
//! [`Caller`] is an extractor, so a handler that takes one is protected: no token or a bad
//! one is a 401 before the handler runs. [`Caller::may_act_on`] is the 403 rule.
//!
//! A session token is checked against its user's current password hash (see `session`), so
//! a token of a deleted user, or one issued before a password change, is a 401.

use crate::entities::user;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sea_orm::{EntityTrait, QuerySelect};
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
        if state.admin_token.matches(token) {
            return Ok(Caller::Admin);
        }
        let claim = state
            .sessions
            .parse(token, chrono::Utc::now())
            .ok_or(ApiError::Unauthorized)?;
        let hash = current_password_hash(state, claim.user)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if state.sessions.verify(&claim, &hash) {
            Ok(Caller::User(claim.user))
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// The stored PHC string of `id`, `None` when there is no such user.
async fn current_password_hash(state: &AppState, id: Uuid) -> Result<Option<String>, ApiError> {
    if let Some(found) = state
        .reader
        .as_deref()
        .and_then(|reader| reader.try_find(id))
    {
        return Ok(found.map(|u| u.password_hash));
    }
    Ok(user::Entity::find_by_id(id)
        .select_only()
        .column(user::Column::PasswordHash)
        .into_tuple::<String>()
        .one(&state.db)
        .await?)
}
