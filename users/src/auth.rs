//! Who is calling: the admin token, a session token, or nobody.
//!
//! [`Caller`] is an extractor, so a handler that takes one is protected: no token or a bad
//! one is a 401 before the handler runs. [`Caller::may_act_on`] is the 403 rule.
//!
//! A session token is checked against its row (see `session` and `session_store`) in one
//! read that also brings its user, which the handler then uses instead of reading it again.
//! A token whose session was ended, has expired or whose user is gone is a 401.

use crate::entities::user;
use crate::error::ApiError;
use crate::session_store;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

/// Why a session token may not act on another user.
const NOT_YOURS: &str = "this token may act only on its own user";

/// The authenticated caller of a protected route.
#[derive(Clone)]
pub(crate) enum Caller {
    /// The admin token: every right.
    Admin,
    /// A session token: rights on its own user only.
    Session(SessionCaller),
}

/// A session token's session and its user, as read when the token was checked.
#[derive(Clone)]
pub(crate) struct SessionCaller {
    /// The session the token names.
    pub session: Uuid,
    /// Its user's row (boxed: the admin variant carries nothing).
    pub user: Box<user::Model>,
}

impl Caller {
    /// Ok when the caller may read, change or delete `user`.
    pub fn may_act_on(&self, user: Uuid) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Session(own) if own.user.id == user => Ok(()),
            Caller::Session(_) => Err(ApiError::Forbidden(NOT_YOURS)),
        }
    }

    /// Ok for the admin only (listing every user).
    pub fn must_be_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Session(_) => Err(ApiError::Forbidden(NOT_YOURS)),
        }
    }

    /// The caller's session, `None` for the admin token.
    pub fn session(&self) -> Option<&SessionCaller> {
        match self {
            Caller::Admin => None,
            Caller::Session(own) => Some(own),
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
        let claim = state.sessions.parse(token).ok_or(ApiError::Unauthorized)?;
        let (session, user) = session_store::find_with_user(state, claim.session)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let unexpired = session.expires_at_ms > chrono::Utc::now().timestamp_millis();
        if !unexpired || !state.sessions.verify(&claim, &session.secret_hash) {
            return Err(ApiError::Unauthorized);
        }
        session_store::touch(state, &session);
        Ok(Caller::Session(SessionCaller {
            session: session.id,
            user: Box::new(user),
        }))
    }
}
