//! `/health` (is the mailer ready: database, sender, transport, and the cluster's link
//! when there is one) and `/metrics`.

use super::AppState;
use crate::amqp::TransportHealth;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use transport::LinkState;
use utoipa::ToSchema;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// The body of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
    /// `ok` (SMTP) or `files`.
    smtp: &'static str,
    /// `socketio` or `{"amqp": "connected"|"disconnected"}`.
    transport: Value,
    /// With `mailer.cluster` only: `connected` (events cross mailers) or `disconnected`
    /// (Redis is away: this mailer's clients get its own events only; it still accepts and
    /// sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    cluster: Option<&'static str>,
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db_ok = state.core.store().is_up().await;
    let transport = match &state.transport {
        TransportHealth::Socketio => json!("socketio"),
        TransportHealth::Amqp(link) => json!({"amqp": match *link.borrow() {
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
        }}),
    };
    let up = if db_ok { "ok" } else { "unavailable" };
    let body = Health {
        status: up,
        database: up,
        smtp: state.sender_health,
        transport,
        // A mailer cut off from the others still accepts and sends: `cluster` informs, and
        // does not make the mailer unready.
        cluster: state.cluster.health().label(),
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics in the OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
