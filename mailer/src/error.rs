//! The mailer's one error type, and the three places it becomes an answer: the mail answer
//! of every door ([`MailError::to_answer`]), the REST error body ([`IntoResponse`]) and the
//! socket.io ack ([`MailError::to_ack`]).
//!
//! Every answer carries a code and one sentence; database internals stay in the logs.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{MailAnswer, MailRequestId};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What went wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The database refused or did not answer (sea-orm).
    #[error("the delivery store is not answering: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The SQLite writer could not commit a batch (the text of SQLite's error, shared by every
    /// write of the batch).
    #[error("the delivery store could not be written: {0}")]
    Write(String),
    /// A stored row cannot be read back as a delivery.
    #[error("a stored delivery cannot be read: {0}")]
    Corrupt(String),
    /// The store's writer has stopped: the mailer is shutting down.
    #[error("the mailer is shutting down")]
    ShuttingDown,
    /// No request with this id.
    #[error("no mail request has the id {0}")]
    NotFound(MailRequestId),
    /// An id that is not a UUID.
    #[error("the mail id must be a UUID")]
    InvalidId,
    /// A bad query parameter or event argument: the code and the sentence.
    #[error("{message}")]
    Invalid {
        /// `invalid_status`, `invalid_page`, `invalid_room`, …
        code: &'static str,
        /// One sentence for the client.
        message: String,
    },
    /// The delivery is not in a status the operation applies to (409).
    #[error("{message}")]
    Conflict {
        /// `not_retryable`, `not_cancellable`, `suppressed`.
        code: &'static str,
        /// One sentence for the client: the status it is in.
        message: String,
    },
    /// No such entry (404) other than a mail: a template or locale (the sentence says which
    /// exist), an address on the suppression list.
    #[error("{0}")]
    Missing(String),
    /// No valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Some fields of a request body are invalid: each field with one sentence (the
    /// `details` of the answer).
    #[error("the request has invalid fields")]
    InvalidFields(BTreeMap<String, String>),
    /// A request body that is not JSON: the parser's sentence.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A request body not declared as JSON.
    #[error("the body must be JSON")]
    UnsupportedMediaType,
    /// A request body over the limit, in bytes.
    #[error("the body is over the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// A route that exists, asked with a method it does not take.
    #[error("this route does not accept this method")]
    MethodNotAllowed,
    /// No route has this path.
    #[error("there is no such route")]
    NoRoute,
    /// The request did not arrive in time.
    #[error("the request took too long")]
    Timeout,
    /// Too many requests from this client for now.
    #[error("too many requests")]
    TooManyRequests,
    /// A fault of the mailer's own, logged where it happened: the sentence for the client.
    #[error("{0}")]
    Internal(&'static str),
}

impl MailError {
    /// Nothing of that name, answered 404 `not_found` with `message`.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::Missing(message.into())
    }

    /// A bad parameter, answered 400 with `code`.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Database(_) | Self::Write(_) | Self::Corrupt(_) | Self::ShuttingDown => {
                "unavailable"
            }
            Self::NotFound(_) => "not_found",
            Self::InvalidId => "invalid_id",
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => code,
            Self::Missing(_) => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::InvalidFields(_) => "invalid_request",
            Self::InvalidJson(_) => "invalid_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NoRoute => "not_found",
            Self::Timeout => "timeout",
            Self::TooManyRequests => "too_many_requests",
            Self::Internal(_) => "internal",
        }
    }

    /// The sentence a client reads: what to do, never database internals.
    pub fn message(&self) -> String {
        match self {
            Self::Database(_) | Self::Write(_) | Self::Corrupt(_) => {
                "The delivery store is not answering; try again later.".into()
            }
            Self::ShuttingDown => {
                "The mailer is shutting down and cannot store requests; try again later.".into()
            }
            Self::NotFound(_) => "No mail request has this id.".into(),
            Self::InvalidId => "The mail id must be a UUID.".into(),
            Self::Invalid { message, .. }
            | Self::Conflict { message, .. }
            | Self::Missing(message) => message.clone(),
            Self::Unauthorized => {
                "A valid bearer token is required: Authorization: Bearer <transport.socketio.token>."
                    .into()
            }
            Self::InvalidFields(fields) => {
                let each: Vec<String> = fields.iter().map(|(f, m)| format!("{f} {m}")).collect();
                format!("The request has invalid fields: {}.", each.join("; "))
            }
            Self::InvalidJson(e) => format!("The body is not valid JSON: {e}."),
            Self::UnsupportedMediaType => {
                "The body must be JSON, sent with Content-Type: application/json.".into()
            }
            Self::PayloadTooLarge(limit) => format!("The body is over the limit of {limit} bytes."),
            Self::MethodNotAllowed => "This route does not accept this method.".into(),
            Self::NoRoute => "There is no such route.".into(),
            Self::Timeout => "The request did not arrive in time.".into(),
            Self::TooManyRequests => "Too many requests from this client; try again later.".into(),
            Self::Internal(sentence) => (*sentence).into(),
        }
    }

    /// The `details` of the REST error body: each invalid field with its sentence, or `{}`.
    fn details(&self) -> Value {
        match self {
            Self::InvalidFields(fields) => json!(fields),
            _ => json!({}),
        }
    }

    /// The HTTP status of the REST error body.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Database(_) | Self::Write(_) | Self::Corrupt(_) | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NotFound(_) | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::InvalidId
            | Self::Invalid { .. }
            | Self::InvalidFields(_)
            | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error of a response that no handler wrote (axum's 404 and 405, a layer's 408, 413
    /// or 429, an extractor's rejection), so that it too gets the contract's shape; `None` for
    /// a status this type has no error of.
    pub fn for_bare_status(status: StatusCode) -> Option<Self> {
        Some(match status {
            StatusCode::BAD_REQUEST => {
                Self::invalid("invalid_request", "The request is not valid.")
            }
            StatusCode::NOT_FOUND => Self::NoRoute,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(domain::mail::MAX_REQUEST_BYTES),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests,
            _ => return None,
        })
    }

    /// Logs a database failure where it is turned into an answer. A failed write batch is
    /// logged once by the writer, not once per caller it answers; a shutdown is expected.
    fn log(&self, context: &str) {
        if matches!(self, Self::Database(_) | Self::Corrupt(_)) {
            tracing::error!(error = %self, "{context}");
        }
    }

    /// The mail answer of a request that could not be stored: `unavailable`, so the sender
    /// tries again.
    pub fn to_answer(&self, id: MailRequestId) -> MailAnswer {
        self.log("a mail request could not be stored");
        let sentence = match self {
            Self::ShuttingDown => "the mailer is shutting down and cannot store requests",
            _ => "the delivery store is not answering; the request was not stored, try again later",
        };
        MailAnswer::unavailable(Some(id), sentence)
    }

    /// The body of a socket.io ack: `{"error": code, "message": sentence}`.
    pub fn to_ack(&self) -> Value {
        self.log("a socket.io event could not be answered");
        json!(EventError {
            error: self.code(),
            message: self.message(),
        })
    }
}

/// An error of a non-mail route: the contract's REST error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code.
    pub error: String,
    /// One sentence.
    pub message: String,
    /// More, per field.
    pub details: Value,
}

/// The ack of a socket.io event that could not be served: the REST error body without
/// `details`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventError {
    /// A stable code: `not_found`, `invalid_id`, `not_retryable`, `not_cancellable`,
    /// `suppressed`, `unavailable`, `invalid_cursor`, `busy`, …
    pub error: &'static str,
    /// One sentence.
    pub message: String,
}

/// The contract's error body: `{"error": code, "message": sentence, "details": {}}`.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: code.to_owned(),
        message: message.to_owned(),
        details: json!({}),
    };
    (status, Json(body)).into_response()
}

impl From<PathRejection> for MailError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid(
            "invalid_request",
            format!("The path is not valid: {}.", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for MailError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid(
            "invalid_request",
            format!("The query string is not valid: {}.", rejection.body_text()),
        )
    }
}

impl IntoResponse for MailError {
    fn into_response(self) -> Response {
        self.log("a REST request could not be answered");
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.message(),
            details: self.details(),
        };
        (self.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store failures never show their internals: the client reads the code and a sentence.
    #[test]
    fn store_failures_answer_unavailable_without_internals() {
        let id: MailRequestId = "7f8e7d3c-1b2a-4c5d-9e8f-0a1b2c3d4e5f".parse().unwrap();
        let e = MailError::Write("disk I/O error on /var/lib/secret.db".into());
        let ack = e.to_ack();
        assert_eq!(ack["error"], "unavailable");
        assert!(!ack["message"].as_str().unwrap().contains("secret"));
        let answer = serde_json::to_value(e.to_answer(id)).unwrap();
        assert_eq!(answer["status"], "unavailable");
        assert!(!answer["error"].as_str().unwrap().contains("secret"));
        assert_eq!(
            MailError::NotFound(id).to_ack(),
            json!({"error": "not_found", "message": "No mail request has this id."})
        );
        assert_eq!(
            MailError::invalid("invalid_page", "x").code(),
            "invalid_page"
        );
    }
}
