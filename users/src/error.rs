//! The one error type of the REST API and its single mapping to HTTP.
//!
//! Every answer that is not a success has the contract's shape
//! `{"error": "<code>", "message": "<sentence>", "details": {…}}`. 5xx causes are logged here
//! with their chain and never sent to the client.

use crate::hashing::HashError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: some fields are invalid; the map names each one.
    #[error("the request has invalid fields")]
    Invalid(BTreeMap<String, String>),
    /// 400: the body is not JSON, or not a JSON object.
    #[error("{0}")]
    InvalidJson(String),
    /// 400: a path or query parameter is malformed.
    #[error("{0}")]
    BadParameter(String),
    /// 415: the body is not declared as JSON.
    #[error("the body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413: the body is over 64 KiB.
    #[error("the body is larger than the limit of 64 KiB")]
    PayloadTooLarge,
    /// 401: no token, or one that is not valid.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 403: a session token acting on another user, or the admin token on a route that is
    /// about the caller's own session.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405: the route exists, the method does not.
    #[error("this route does not accept this method")]
    MethodNotAllowed,
    /// 409: `login` or `email` already belongs to another user.
    #[error("this {0} is already taken")]
    Taken(&'static str),
    /// 401 from `POST /authenticate`: unknown login or wrong password, told apart nowhere.
    #[error("the login or the password is wrong")]
    InvalidCredentials,
    /// 400 from `POST /password-resets/{token}` and `POST /email-verifications/{token}`.
    #[error("this link's token is unknown, expired or already used")]
    InvalidToken,
    /// 403 from `POST /authenticate` with the right password, when
    /// `users.require_verified_email` holds and the account's address is not proved.
    #[error(
        "this account's address is not proved yet; follow the link mailed to it, or ask for a new one at POST /email-verifications"
    )]
    EmailNotVerified,
    /// 429 with `Retry-After`: a rate limit of `users.limits` refuses the request for now.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// When the limit lets the next request through.
        retry_after: Duration,
    },
    /// 503 with `Retry-After: 1`: more password hashes wait than `users.max_pending_hashes`.
    #[error("the service is busy; try again in a second")]
    Busy,
    /// 503: the database does not answer.
    #[error("the service cannot reach its database right now; try again later")]
    Unavailable(#[source] anyhow::Error),
    /// 500: anything else, logged with its causes.
    #[error("an internal error occurred")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// One bad field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(BTreeMap::from([(field.to_owned(), message.into())]))
    }

    /// A bare status turned into the contract's shape (axum's 404/405, a timeout, 413 from
    /// the body limit layer), for responses that no handler wrote.
    pub fn for_bare_status(status: StatusCode) -> Response {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "there is no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this route does not accept this method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the body is larger than the limit of 64 KiB",
            ),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long and was stopped"),
            StatusCode::TOO_MANY_REQUESTS => {
                ("too_many_requests", "too many requests; try again later")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ),
            s if s.is_server_error() => ("internal", "an internal error occurred"),
            _ => ("invalid_request", "the request is not valid"),
        };
        body(status, code, message, Map::new())
    }

    /// The status and the `error` code of this error's answer.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::BadParameter(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Taken(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token"),
            ApiError::EmailNotVerified => (StatusCode::FORBIDDEN, "email_not_verified"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::Busy | ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

fn body(status: StatusCode, code: &str, message: &str, details: Map<String, Value>) -> Response {
    let body = json!({ "error": code, "message": message, "details": details });
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut details = Map::new();
        match &self {
            ApiError::Invalid(fields) => {
                for (field, message) in fields {
                    details.insert(field.clone(), Value::String(message.clone()));
                }
            }
            ApiError::Taken(field) => {
                details.insert(
                    (*field).to_owned(),
                    Value::String("is already taken".to_owned()),
                );
            }
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
            }
            _ => {}
        }
        let mut response = body(status, code, &self.to_string(), details);
        if let Some(seconds) = self.retry_after_seconds() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl ApiError {
    /// Whole seconds for `Retry-After`, rounded up and at least 1.
    fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after } => {
                let whole = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(whole.max(1))
            }
            ApiError::Busy => Some(1),
            _ => None,
        }
    }
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => ApiError::Busy,
            HashError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::InvalidJson(format!("the body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::InvalidJson(format!("the body has the wrong shape: {}", e.body_text()))
            }
            other => {
                ApiError::InvalidJson(format!("the body could not be read: {}", other.body_text()))
            }
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadParameter(format!("the path is not valid: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadParameter(format!(
            "the query string is not valid: {}",
            rejection.body_text()
        ))
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                ApiError::Unavailable(anyhow::Error::new(err))
            }
            other => {
                ApiError::Internal(anyhow::Error::new(other).context("a database query failed"))
            }
        }
    }
}
