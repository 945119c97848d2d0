//! `POST /mails`, `GET /mails/{id}`, `GET /mails`, and an operator's `POST
//! /mails/{id}/retry`, `POST /mails/retry` and `POST /mails/{id}/cancel`: the REST doors of
//! the same core the socket.io events use.

use super::AppState;
use super::extract::{ApiPath, ApiQuery};
use super::json_body::read_json;
use crate::error::MailError;
use crate::store::{DeliveryRecord, DeliveryStatus, RetryFilter};
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::mail::MAX_REQUEST_BYTES;
use domain::{Email, MailAnswer, MailRequest, MailRequestId, MailStatus, Template};
use serde::Deserialize;
use transport::Origin;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mails", post(create_mail).get(list_mails))
        .route("/mails/{id}", get(get_mail))
        .route("/mails/retry", post(retry_mails))
        .route("/mails/{id}/retry", post(retry_mail))
        .route("/mails/{id}/cancel", post(cancel_mail))
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

pub(super) fn is_json(headers: &HeaderMap) -> bool {
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
    request_body(content = domain::MailRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; it will be sent", body = domain::MailAnswer),
        (status = 200, description = "This id was seen before; nothing new is sent", body = domain::MailAnswer),
        (status = 400, description = "Rejected", body = domain::MailAnswer),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = domain::MailAnswer),
        (status = 415, description = "Content type is not JSON", body = domain::MailAnswer),
        (status = 503, description = "Could not be stored now; retry", body = domain::MailAnswer),
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
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "The delivery record", body = crate::store::DeliveryRecord),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such request", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_mail(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
    let Ok(id) = id.parse::<MailRequestId>() else {
        return MailError::InvalidId.into_response();
    };
    match state.core.get_mail(id).await {
        Ok(record) => Json(record).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /mails` query parameters. Read as text, so that a bad value gets the route's own
/// error code (`invalid_status`, `invalid_page`); described with their real types.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the records in this status.
    #[param(value_type = Option<crate::store::DeliveryStatus>)]
    status: Option<String>,
    /// The page, from 1 (default 1).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Records per page, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

pub(super) fn number(
    name: &str,
    value: Option<&str>,
    default: u64,
    max: u64,
) -> Result<u64, MailError> {
    match value {
        None => Ok(default),
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
        (status = 200, description = "One page of records", body = crate::store::Page),
        (status = 400, description = "A bad parameter", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_mails(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Response {
    match list(&state, &params).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list(state: &AppState, params: &ListParams) -> Result<crate::store::Page, MailError> {
    let status = params
        .status
        .as_deref()
        .map(DeliveryStatus::parse_public)
        .transpose()?;
    let page = number("page", params.page.as_deref(), 1, 1_000_000)?;
    let per_page = number("per_page", params.per_page.as_deref(), 20, 100)?;
    state.core.store().list(status, page, per_page).await
}

/// The answer of an operation on one mail: the record as it now is, or the error.
fn record_or_error(result: Result<DeliveryRecord, MailError>) -> Response {
    match result {
        Ok(record) => Json(record).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Puts a `failed` delivery back to `queued` (the same handler as `retry-mail`).
#[utoipa::path(post, path = "/mails/{id}/retry", tag = "operations",
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "Queued again; the record as it now is", body = crate::store::DeliveryRecord),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such request", body = crate::error::ErrorBody),
        (status = 409, description = "`not_retryable`: it is not failed; `suppressed`: its address is on the suppression list", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_mail(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
    let Ok(id) = id.parse::<MailRequestId>() else {
        return MailError::InvalidId.into_response();
    };
    record_or_error(state.core.retry_mail(id, &Origin::Http).await)
}

/// Cancels a `queued` or `retrying` delivery (the same handler as `cancel-mail`).
#[utoipa::path(post, path = "/mails/{id}/cancel", tag = "operations",
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "Cancelled; it will never be sent", body = crate::store::DeliveryRecord),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such request", body = crate::error::ErrorBody),
        (status = 409, description = "`not_cancellable`: sent, failed, cancelled, suppressed, or being handed to SMTP", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn cancel_mail(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
    let Ok(id) = id.parse::<MailRequestId>() else {
        return MailError::InvalidId.into_response();
    };
    record_or_error(state.core.cancel_mail(id).await)
}

/// The filter of `POST /mails/retry`. Read as text, so that a bad value gets the route's
/// own error code (`invalid_filter`); described with the values it takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Must be `failed`.
    #[schema(required = true, schema_with = only_failed)]
    status: Option<String>,
    /// Only this template.
    #[schema(value_type = Option<Template>)]
    template: Option<String>,
    /// Only this recipient, however it is spelt (compared in canonical form: domain by
    /// UTS-46, local part in NFC and without case).
    #[schema(format = Email, max_length = 254)]
    to: Option<String>,
    /// Only mails stored before this time (RFC 3339).
    #[schema(format = DateTime)]
    before: Option<String>,
}

/// The only status `POST /mails/retry` takes.
fn only_failed() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["failed"]))
        .description(Some("Must be `failed`."))
        .build()
}

/// The answer of `POST /mails/retry`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Retried {
    /// How many deliveries went back to `queued`.
    retried: u64,
}

fn retry_filter(body: RetryBody) -> Result<RetryFilter, MailError> {
    let bad = |message: String| MailError::invalid("invalid_filter", message);
    if body.status.as_deref() != Some("failed") {
        return Err(bad(
            "status must be \"failed\": only failed mails can be retried.".into(),
        ));
    }
    let template = body
        .template
        .map(|t| Template::parse(&t).map_err(|e| bad(format!("template {}.", e.message))))
        .transpose()?;
    let to = body
        .to
        .map(|t| Email::parse(t).map_err(|e| bad(format!("to {}.", e.message))))
        .transpose()?;
    let before = body
        .before
        .map(|b| {
            chrono::DateTime::parse_from_rfc3339(&b)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| bad(format!("before must be an RFC 3339 time, not {b:?}.")))
        })
        .transpose()?;
    Ok(RetryFilter {
        template,
        to,
        before,
    })
}

/// Puts every `failed` delivery the filter matches back to `queued`, a page per store
/// transaction; deliveries to a suppressed address stay `failed`.
#[utoipa::path(post, path = "/mails/retry", tag = "operations",
    request_body(content = RetryBody, content_type = "application/json"),
    responses(
        (status = 200, description = "How many went back to queued", body = Retried),
        (status = 400, description = "A bad filter", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Content type is not JSON", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_mails(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body: RetryBody = match read_json(&headers, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let retried = async {
        let filter = retry_filter(body)?;
        state.core.retry_mails(filter).await
    };
    match retried.await {
        Ok(retried) => Json(Retried { retried }).into_response(),
        Err(e) => e.into_response(),
    }
}
