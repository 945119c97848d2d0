//! `POST /mails`, `GET /mails/{id}` and `GET /mails`: the REST doors of the same core the
//! socket.io events use.

use super::AppState;
use crate::error::MailError;
use crate::store::DeliveryStatus;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::mail::MAX_REQUEST_BYTES;
use domain::{MailAnswer, MailRequest, MailRequestId, MailStatus};
use serde::Deserialize;
use transport::Origin;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mails", post(create_mail).get(list_mails))
        .route("/mails/{id}", get(get_mail))
}

fn answer_response(answer: MailAnswer) -> Response {
    let status = match answer.status {
        MailStatus::Accepted => StatusCode::ACCEPTED,
        MailStatus::Duplicate => StatusCode::OK,
        MailStatus::Rejected { .. } => StatusCode::BAD_REQUEST,
        MailStatus::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(answer)).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Accepts a mail request: 202 accepted, 200 duplicate, 400 rejected, 413 too large, 415
/// not JSON, 503 unavailable; the body is always the answer.
#[utoipa::path(post, path = "/mails", tag = "mails",
    request_body(content = super::openapi::MailRequestDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; it will be sent", body = super::openapi::MailAnswerDoc),
        (status = 200, description = "This id was seen before; nothing new is sent", body = super::openapi::MailAnswerDoc),
        (status = 400, description = "Rejected", body = super::openapi::MailAnswerDoc),
        (status = 401, description = "No or a bad bearer token", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 64 KiB", body = super::openapi::MailAnswerDoc),
        (status = 415, description = "Content type is not JSON", body = super::openapi::MailAnswerDoc),
        (status = 503, description = "Could not be stored now; retry", body = super::openapi::MailAnswerDoc),
    ),
    security(("bearer" = [])))]
pub async fn create_mail(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = &state.metrics;
    let reject = |status: StatusCode, error: String| {
        metrics.count_request("http", "rejected");
        (status, Json(MailAnswer::rejected(None, error))).into_response()
    };
    if !is_json(&headers) {
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request: the content type must be application/json.".into(),
        );
    }
    let too_large = || format!("request: the body is over the limit of {MAX_REQUEST_BYTES} bytes.");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
        return reject(StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let bytes = match to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return reject(StatusCode::PAYLOAD_TOO_LARGE, too_large()),
    };
    let request = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("request: is not valid JSON: {e}"),
            );
        }
        Ok(value) => match MailRequest::from_value(value.clone()) {
            Ok(request) => request,
            Err(invalid) => {
                metrics.count_request("http", "rejected");
                return answer_response(MailAnswer::rejected_payload(&value, &invalid));
            }
        },
    };
    let answer = state.core.accept_mail_request(request, Origin::Http).await;
    answer_response(answer)
}

/// One delivery record; 404 when the id is unknown.
#[utoipa::path(get, path = "/mails/{id}", tag = "mails",
    params(("id" = String, Path, description = "The request id (UUID)")),
    responses(
        (status = 200, description = "The delivery record", body = super::openapi::DeliveryRecordDoc),
        (status = 400, description = "The id is not a UUID", body = super::openapi::ErrorDoc),
        (status = 401, description = "No or a bad bearer token", body = super::openapi::ErrorDoc),
        (status = 404, description = "No such request", body = super::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn get_mail(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<MailRequestId>() else {
        return MailError::InvalidId.into_response();
    };
    match state.core.get_mail(id).await {
        Ok(record) => Json(record).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /mails` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// `queued`, `sent`, `retrying` or `failed`.
    status: Option<String>,
    /// The page, from 1 (default 1).
    page: Option<String>,
    /// Records per page, 1 to 100 (default 20).
    per_page: Option<String>,
}

fn number(name: &str, value: Option<&str>, default: u64, max: u64) -> Result<u64, MailError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(MailError::invalid(
                "invalid_page",
                format!("{name} must be a whole number from 1 to {max}."),
            )),
        },
    }
}

/// Delivery records, newest first, optionally by status.
#[utoipa::path(get, path = "/mails", tag = "mails", params(ListParams),
    responses(
        (status = 200, description = "One page of records", body = super::openapi::PageDoc),
        (status = 400, description = "A bad parameter", body = super::openapi::ErrorDoc),
        (status = 401, description = "No or a bad bearer token", body = super::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn list_mails(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Response {
    match list(&state, &params).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list(state: &AppState, params: &ListParams) -> Result<crate::store::Page, MailError> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeliveryStatus::parse_public(s)?),
    };
    let page = number("page", params.page.as_deref(), 1, 1_000_000)?;
    let per_page = number("per_page", params.per_page.as_deref(), 20, 100)?;
    state.core.store().list(status, page, per_page).await
}
