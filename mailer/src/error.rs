//! The mailer's one error type, and the three places it becomes an answer: the mail answer
//! of every door ([`MailError::to_answer`]), the REST error body ([`IntoResponse`]) and the
//! socket.io ack ([`MailError::to_ack`]).
//!
//! Every answer carries a code and one sentence; database internals stay in the logs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{MailAnswer, MailRequestId};
use serde_json::{Value, json};

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
    /// No such entry (404) other than a mail: a template, an address on the suppression
    /// list.
    #[error("{message}")]
    Missing {
        /// `not_found`, `unknown_template`, …
        code: &'static str,
        /// One sentence for the client.
        message: String,
    },
    /// No valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
}

impl MailError {
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
            Self::Invalid { code, .. }
            | Self::Conflict { code, .. }
            | Self::Missing { code, .. } => code,
            Self::Unauthorized => "unauthorized",
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
            | Self::Missing { message, .. } => message.clone(),
            Self::Unauthorized => {
                "A valid bearer token is required: Authorization: Bearer <transport.socketio.token>."
                    .into()
            }
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Database(_) | Self::Write(_) | Self::Corrupt(_) | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NotFound(_) | Self::Missing { .. } => StatusCode::NOT_FOUND,
            Self::InvalidId | Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
        }
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
        json!({"error": self.code(), "message": self.message()})
    }
}

/// The contract's error body: `{"error": code, "message": sentence, "details": {}}`.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message, "details": {}})),
    )
        .into_response()
}

impl IntoResponse for MailError {
    fn into_response(self) -> Response {
        self.log("a REST request could not be answered");
        error_body(self.status(), self.code(), &self.message())
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
