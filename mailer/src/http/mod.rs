//! The REST side of the mailer (axum): the router, the shared state, bearer-token checks
//! and request metrics. One module per URL family:
//!
//! - [`mails`]: `POST /mails`, `GET /mails/{id}`, `GET /mails`, and retrying and cancelling;
//! - [`suppressions`]: the suppression list;
//! - [`recipients`]: erasing what is held about one address;
//! - [`dkim`]: the DNS record of the key that signs the mails;
//! - [`webhooks`]: webhook endpoints and their attempts;
//! - [`health`]: `/health` and `/metrics`;
//! - [`live`]: the live page `/`, its socket.io client `/live.js` and its style `/live.css`;
//! - [`openapi`]: `/openapi.json` and `/docs`;
//! - [`asyncapi`]: `/asyncapi.json` (the event side in AsyncAPI) and `/asyncapi`;
//! - [`templates`]: `/templates`, a template's render and its preview page.
//!
//! The handlers read their requests through the extractors of `extract`, which reject in
//! [`MailError`]s and read every body within the mailer's limit, and answer
//! `Result<_, MailError>`.

pub mod asyncapi;
pub mod dkim;
mod extract;
pub mod health;
pub mod live;
pub mod mails;
pub mod openapi;
pub mod recipients;
pub mod suppressions;
pub mod templates;
pub mod webhooks;

use crate::amqp::TransportHealth;
use crate::error::MailError;
use crate::mailer_core::MailerCore;
use crate::metrics::{HttpLabels, Metrics};
use crate::templates::live::LiveTemplates;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use domain::Secret;
use std::sync::Arc;
use std::time::Instant;

/// Shared by every handler. Axum clones it for every request and every layer that reads it:
/// one counted reference, where its parts would take one each.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What the handlers share.
pub struct AppParts {
    /// The core.
    pub core: MailerCore,
    /// The bearer token of protected routes.
    pub token: Secret,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `ok` (SMTP) or `files`.
    pub sender_health: &'static str,
    /// The transport, for `/health`.
    pub transport: TransportHealth,
    /// The mail templates and their catalog, for the template routes.
    pub templates: Arc<LiveTemplates>,
    /// The link to the other mailers, for `/health`.
    pub cluster: crate::cluster::Cluster,
    /// The AsyncAPI document, built at its first request.
    pub asyncapi: asyncapi::AsyncApiDocument,
    /// The OpenAPI document, likewise.
    pub openapi: openapi::OpenApiDocument,
    /// The DNS record of the DKIM key, when mails are signed.
    pub dkim: Option<crate::sending::DkimRecord>,
    /// The webhooks' sender, for URL checks and an operator's retry.
    pub webhooks: crate::webhooks::Webhooks,
}

/// The whole router, without the socket.io layer.
pub fn router(state: AppState) -> Router {
    let protected = mails::router()
        .merge(suppressions::router())
        .merge(recipients::router())
        .merge(dkim::router())
        .merge(webhooks::router())
        .merge(templates::protected())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .merge(health::router())
        .merge(live::router())
        .merge(openapi::router())
        .merge(asyncapi::router())
        .merge(templates::open())
        .fallback(|| async { MailError::NoRoute })
        .method_not_allowed_fallback(|| async { MailError::MethodNotAllowed })
        .layer(middleware::from_fn(shape_bare_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state)
}

/// Gives the contract's error body to error responses that no handler wrote: a layer's bare
/// status or an extractor's plain-text rejection. Headers such as 405's `Allow` and 429's
/// `Retry-After` are kept.
async fn shape_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let shaped = match MailError::for_bare_status(status) {
        Some(error) => error.into_response(),
        None => crate::error::error_body(
            status,
            if status.is_server_error() {
                "internal"
            } else {
                "invalid_request"
            },
            status.canonical_reason().unwrap_or("The request failed."),
        ),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(shaped.headers().clone());
    let (_, body) = shaped.into_parts();
    Response::from_parts(parts, body)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if state.token.matches(token) => next.run(request).await,
        _ => MailError::Unauthorized.into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = HttpLabels {
        route,
        status: response.status().as_u16(),
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state
        .metrics
        .http_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
