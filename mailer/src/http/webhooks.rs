//! Webhook endpoints: `POST /webhooks`, `GET /webhooks`, `GET`, `PATCH` and
//! `DELETE /webhooks/{id}`, `GET /webhooks/{id}/attempts` and
//! `POST /webhooks/{id}/attempts/{attempt_id}/retry`. What is sent and when is in
//! `crate::webhooks`.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Paging};
use super::suppressions::PageParams;
use crate::error::MailError;
use crate::store::{
    AttemptPage, EndpointChange, NewEndpoint, PUBLIC_STATUSES, WebhookAttempt, WebhookEndpoint,
};
use crate::webhooks::signature;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The most endpoints a mailer keeps: each status change writes one event per endpoint.
pub const MAX_ENDPOINTS: u64 = 50;
/// The longest URL taken.
const MAX_URL_CHARS: usize = 2048;
/// The longest description taken.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(add))
        .route("/webhooks/{id}", get(get_one).patch(change).delete(remove))
        .route("/webhooks/{id}/attempts", get(attempts))
        .route(
            "/webhooks/{id}/attempts/{attempt_id}/retry",
            post(retry_attempt),
        )
}

/// The body of `POST /webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where to POST the events: http or https, a host that resolves to public addresses
    /// (unless `mailer.webhooks.allow_private_targets`), no credentials.
    #[schema(required = true, value_type = String, max_length = 2048, example = "https://hooks.example.com/facteur")]
    url: Option<String>,
    /// The statuses to receive; absent or null for every status.
    #[schema(value_type = Option<Vec<crate::store::DeliveryStatus>>, min_items = 1, max_items = 8)]
    events: Option<Vec<String>>,
    /// A note for operators (at most 500 characters, no control characters).
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    description: Option<String>,
}

/// The body of `PATCH /webhooks/{id}`: each field given is changed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChangeBody {
    /// A new URL, checked as at creation.
    #[schema(value_type = Option<String>, max_length = 2048, nullable = false)]
    url: Option<String>,
    /// The statuses to receive; null for every status.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<crate::store::DeliveryStatus>>, min_items = 1, max_items = 8)]
    events: Option<Option<Vec<String>>>,
    /// A note for operators; null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    description: Option<Option<String>>,
    /// True turns a disabled endpoint back on (and starts its count of failing days over);
    /// false stops its events.
    #[schema(value_type = Option<bool>, nullable = false)]
    enabled: Option<bool>,
}

/// A field that is present, null or not: absent stays `None`, null is `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// An endpoint as created: the whole endpoint and its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    /// `ep_` and 32 hexadecimal digits.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The statuses it receives; null for every status.
    pub events: Option<Vec<String>>,
    /// What the operator wrote about it.
    pub description: Option<String>,
    /// True.
    pub enabled: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`), for a Standard Webhooks library to verify each
    /// request; shown only here.
    pub secret: String,
}

/// `GET /webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    /// Every endpoint, oldest first (at most 50).
    pub items: Vec<WebhookEndpoint>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> MailError {
    MailError::invalid(code, message)
}

fn read_url(value: &str) -> Result<&str, MailError> {
    if value.chars().count() > MAX_URL_CHARS {
        return Err(invalid(
            "invalid_url",
            format!("url must be at most {MAX_URL_CHARS} characters."),
        ));
    }
    Ok(value)
}

async fn checked_url(state: &AppState, value: &str) -> Result<String, MailError> {
    state
        .webhooks
        .check_url(read_url(value)?)
        .await
        .map_err(|e| invalid("invalid_url", e.0))
}

fn read_events(events: Option<Vec<String>>) -> Result<Option<Vec<&'static str>>, MailError> {
    let Some(events) = events else {
        return Ok(None);
    };
    if events.is_empty() {
        return Err(invalid(
            "invalid_events",
            "events must name at least one status, or be left out for every status.",
        ));
    }
    let mut chosen = Vec::new();
    for event in &events {
        let status = PUBLIC_STATUSES
            .into_iter()
            .find(|s| s == event)
            .ok_or_else(|| {
                invalid(
                    "invalid_events",
                    format!(
                        "events: {event:?} is not a status; expected some of {}.",
                        PUBLIC_STATUSES.join(", ")
                    ),
                )
            })?;
        if !chosen.contains(&status) {
            chosen.push(status);
        }
    }
    Ok(Some(chosen))
}

fn read_description(description: Option<String>) -> Result<Option<String>, MailError> {
    if let Some(text) = &description
        && (text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control))
    {
        return Err(invalid(
            "invalid_description",
            format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters, without control characters."
            ),
        ));
    }
    Ok(description)
}

fn unknown(id: &str) -> MailError {
    MailError::missing(format!("No webhook endpoint has the id {id:?}."))
}

/// Adds an endpoint; from the next status change on, its events are sent.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    request_body(content = NewWebhookBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; the secret is shown this once", body = CreatedWebhook),
        (status = 400, description = "A URL that is not http(s), that does not resolve or resolves to a non-public address, bad events or description, or a bad body", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 409, description = "There are 50 endpoints already (`too_many_endpoints`)", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Content type is not JSON", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<impl IntoResponse, MailError> {
    let url = body
        .url
        .as_deref()
        .ok_or_else(|| invalid("invalid_url", "url is required."))?;
    let events = read_events(body.events)?;
    let description = read_description(body.description)?;
    let url = checked_url(&state, url).await?;
    let store = state.core.store();
    if store.webhook_endpoint_count().await? >= MAX_ENDPOINTS {
        return Err(MailError::Conflict {
            code: "too_many_endpoints",
            message: format!(
                "A mailer keeps at most {MAX_ENDPOINTS} webhook endpoints; delete one first."
            ),
        });
    }
    let endpoint = NewEndpoint {
        id: signature::new_id("ep"),
        url,
        events,
        description,
        secret: signature::new_secret(),
        at: Utc::now(),
    };
    store.add_webhook_endpoint(endpoint.clone()).await?;
    state.webhooks.wake();
    let created = CreatedWebhook {
        id: endpoint.id,
        url: endpoint.url,
        events: endpoint
            .events
            .map(|list| list.into_iter().map(str::to_string).collect()),
        description: endpoint.description,
        enabled: true,
        created_at: endpoint.at,
        secret: endpoint.secret,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every endpoint, oldest first (never their secrets).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<WebhookList>, MailError> {
    Ok(Json(WebhookList {
        items: state.core.store().webhook_endpoints().await?,
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookEndpoint>, MailError> {
    state
        .core
        .store()
        .webhook_endpoint(&id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown(&id))
}

/// Changes an endpoint: its URL, its statuses, its description, or whether it is enabled.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    request_body(content = WebhookChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpoint),
        (status = 400, description = "A refused URL, bad events or description, or a bad body", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Content type is not JSON", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn change(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WebhookChangeBody>,
) -> Result<Json<WebhookEndpoint>, MailError> {
    let events = body.events.map(read_events).transpose()?;
    let description = body.description.map(read_description).transpose()?;
    let url = match body.url.as_deref() {
        Some(url) => Some(checked_url(&state, url).await?),
        None => None,
    };
    let store = state.core.store();
    let change = EndpointChange {
        url,
        events,
        description,
        enabled: body.enabled,
    };
    let enabling = change.enabled == Some(true);
    if !store.change_webhook_endpoint(&id, change).await? {
        return Err(unknown(&id));
    }
    if enabling {
        state.webhooks.wake();
    }
    store
        .webhook_endpoint(&id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown(&id))
}

/// Deletes an endpoint with its pending events and its attempts.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, MailError> {
    if state.core.store().remove_webhook_endpoint(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&id))
    }
}

/// The attempts to reach an endpoint, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)"), PageParams),
    responses(
        (status = 200, description = "One page of attempts", body = AttemptPage),
        (status = 400, description = "A bad parameter", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<AttemptPage>, MailError> {
    let Paging { page, per_page } = params.paging()?;
    let store = state.core.store();
    if store.webhook_endpoint(&id).await?.is_none() {
        return Err(unknown(&id));
    }
    Ok(Json(store.webhook_attempts(&id, page, per_page).await?))
}

/// Sends the event of an attempt once more, now, whatever became of it, and answers the new
/// attempt. A success marks the event delivered; a failure leaves its schedule as it was.
#[utoipa::path(post, path = "/webhooks/{id}/attempts/{attempt_id}/retry", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id (`ep_…`)"),
        ("attempt_id" = String, Path, description = "An attempt's id (`att_…`)"),
    ),
    responses(
        (status = 200, description = "The new attempt", body = WebhookAttempt),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint or attempt, or its mail was deleted since", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retry_attempt(
    State(state): State<AppState>,
    ApiPath((id, attempt_id)): ApiPath<(String, String)>,
) -> Result<Json<WebhookAttempt>, MailError> {
    let message = state
        .core
        .store()
        .webhook_message_of_attempt(&id, &attempt_id)
        .await?
        .ok_or_else(|| {
            MailError::missing(format!(
                "Endpoint {id:?} has no attempt {attempt_id:?} whose mail is still held."
            ))
        })?;
    Ok(Json(state.webhooks.send_again(message).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_statuses_without_repeats() {
        assert_eq!(read_events(None).expect("absent"), None);
        assert_eq!(
            read_events(Some(vec!["sent".into(), "failed".into(), "sent".into()]))
                .expect("statuses"),
            Some(vec!["sent", "failed"])
        );
        assert!(read_events(Some(vec![])).is_err());
        assert!(read_events(Some(vec!["mail.sent".into()])).is_err());
        assert!(read_events(Some(vec!["sending".into()])).is_err());
        assert_eq!(
            read_events(Some(vec!["bounced".into(), "complained".into()])).expect("statuses"),
            Some(vec!["bounced", "complained"])
        );
    }
}
