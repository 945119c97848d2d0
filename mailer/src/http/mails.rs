//! `POST /mails`, `GET /mails/{id}`, `GET /mails`, and an operator's `POST
//! /mails/{id}/retry`, `POST /mails/retry` and `POST /mails/{id}/cancel`: the REST doors of
//! the same core the socket.io events use.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, JsonBody, Paging, parse};
use crate::error::MailError;
use crate::store::{DeliveryRecord, DeliveryStatus, RetryFilter};
use crate::templates::Templates;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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

/// The answer of `POST /mails`, with its status: that of the answer, or for a body that
/// could not be read, that of the reason (413, 415, 400).
pub struct MailReply(StatusCode, MailAnswer);

impl From<MailAnswer> for MailReply {
    fn from(answer: MailAnswer) -> Self {
        let status = match answer.status {
            MailStatus::Accepted => StatusCode::ACCEPTED,
            MailStatus::Duplicate => StatusCode::OK,
            MailStatus::Rejected { .. } => StatusCode::BAD_REQUEST,
            MailStatus::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, answer)
    }
}

impl IntoResponse for MailReply {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
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
    body: Result<JsonBody, MailError>,
) -> MailReply {
    match mail_request(body) {
        Ok(request) => state
            .core
            .accept_mail_request(request, Origin::Http)
            .await
            .into(),
        Err(refused) => {
            state.metrics.count_request("http", "rejected");
            refused
        }
    }
}

/// The mail request a body holds, or the answer refusing it.
fn mail_request(body: Result<JsonBody, MailError>) -> Result<MailRequest, MailReply> {
    let JsonBody(bytes) = body.map_err(unreadable)?;
    if let Some(request) = MailRequest::read_valid(&bytes) {
        return Ok(request);
    }
    let value = parse(&bytes).map_err(unreadable)?;
    MailAnswer::decode(value).map_err(MailReply::from)
}

/// `rejected`, without an id, for a body that could not be read as JSON.
fn unreadable(error: MailError) -> MailReply {
    let sentence = match &error {
        MailError::UnsupportedMediaType => {
            "request: the content type must be application/json.".to_string()
        }
        MailError::PayloadTooLarge(limit) => {
            format!("request: the body is over the limit of {limit} bytes.")
        }
        MailError::InvalidJson(e) => format!("request: is not valid JSON: {e}"),
        other => format!("request: {}", other.message()),
    };
    MailReply(error.status(), MailAnswer::rejected(None, sentence))
}

/// The id of a mail as a path gives it.
fn mail_id(id: &str) -> Result<MailRequestId, MailError> {
    id.parse().map_err(|_| MailError::InvalidId)
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
pub async fn get_mail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryRecord>, MailError> {
    Ok(Json(state.core.get_mail(mail_id(&id)?).await?))
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
) -> Result<impl IntoResponse, MailError> {
    let status = params
        .status
        .as_deref()
        .map(DeliveryStatus::parse_public)
        .transpose()?;
    let Paging { page, per_page } =
        Paging::read(params.page.as_deref(), params.per_page.as_deref())?;
    Ok(Json(state.core.store().list(status, page, per_page).await?))
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
pub async fn retry_mail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryRecord>, MailError> {
    let record = state.core.retry_mail(mail_id(&id)?, &Origin::Http).await?;
    Ok(Json(record))
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
pub async fn cancel_mail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryRecord>, MailError> {
    Ok(Json(state.core.cancel_mail(mail_id(&id)?).await?))
}

/// The filter of `POST /mails/retry`. Read as text, so that a bad value gets the route's
/// own error code (`invalid_filter`); described with the values it takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Must be `failed`.
    #[schema(required = true, schema_with = only_failed)]
    status: Option<String>,
    /// Only this template: a name of the catalog in force (the document lists the built-in
    /// ones, which every catalog holds).
    #[schema(schema_with = built_in_templates)]
    template: Option<String>,
    /// Only this recipient, however it is spelt (compared in canonical form: domain by
    /// UTS-46, local part in NFC and without case).
    #[schema(format = Email, max_length = 254)]
    to: Option<String>,
    /// Only mails stored before this time (RFC 3339).
    #[schema(format = DateTime)]
    before: Option<String>,
}

/// The built-in templates' names, or null (no filter).
fn built_in_templates() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let names = Template::BUILT_IN.iter().map(|t| t.as_str().into());
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            names
                .chain([serde_json::Value::Null])
                .collect::<Vec<serde_json::Value>>(),
        ))
        .build()
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

fn retry_filter(body: RetryBody, templates: &Templates) -> Result<RetryFilter, MailError> {
    let bad = |message: String| MailError::invalid("invalid_filter", message);
    if body.status.as_deref() != Some("failed") {
        return Err(bad(
            "status must be \"failed\": only failed mails can be retried.".into(),
        ));
    }
    let template = body
        .template
        .map(|t| {
            let template =
                Template::parse(&t).map_err(|e| bad(format!("template {}.", e.message)))?;
            match templates.entry(&template) {
                Some(_) => Ok(template),
                None => Err(bad(format!(
                    "template {t:?} is not in the catalog: expected one of {}.",
                    templates.catalog().names().join(", ")
                ))),
            }
        })
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
    ApiJson(body): ApiJson<RetryBody>,
) -> Result<impl IntoResponse, MailError> {
    let filter = retry_filter(body, &state.templates.current())?;
    let retried = state.core.retry_mails(filter).await?;
    Ok(Json(Retried { retried }))
}
