//! The REST side of the mailer (axum): the router, the shared state, bearer-token checks
//! and request metrics. One module per URL family:
//!
//! - [`mails`]: `POST /mails`, `GET /mails/{id}`, `GET /mails`;
//! - [`health`]: `/health` and `/metrics`;
//! - [`live`]: the live page `/` and its socket.io client `/live.js`;
//! - [`openapi`]: `/openapi.json` and `/docs`.

pub mod health;
pub mod live;
pub mod mails;
pub mod openapi;

use crate::core::MailerCore;
use crate::metrics::{HttpLabels, Metrics};
use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use domain::Secret;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use transport::LinkState;

/// What `/health` reports about the transport.
#[derive(Clone)]
pub enum TransportHealth {
    /// socket.io: the mailer is the server, so the link is up while it runs.
    Socketio,
    /// AMQP: the consumer's link state.
    Amqp(Arc<dyn Fn() -> LinkState + Send + Sync>),
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub core: MailerCore,
    /// The bearer token of protected routes.
    pub token: Secret,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `ok` (SMTP) or `files`.
    pub sender_kind: &'static str,
    /// The transport, for `/health`.
    pub transport: TransportHealth,
}

/// The contract's error body for non-mail routes.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message, "details": {}})),
    )
        .into_response()
}

/// The whole router, without the socket.io layer.
pub fn router(state: AppState) -> Router {
    let protected =
        mails::router().route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .merge(health::router())
        .merge(live::router())
        .merge(openapi::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state)
}

/// Compares in time independent of where the strings differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, x) in given.iter().enumerate() {
        diff |= usize::from(x ^ expected.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if same_secret(token.as_bytes(), state.token.expose().as_bytes()) => {
            next.run(request).await
        }
        _ => error_body(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required: Authorization: Bearer <transport.socketio.token>.",
        ),
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
