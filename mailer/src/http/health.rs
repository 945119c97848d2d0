//! `/health` (is the mailer ready: database, sender, transport, and the cluster's link
//! when there is one) and `/metrics`.

use super::AppState;
use crate::amqp::TransportHealth;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use transport::LinkState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = super::openapi::HealthDoc),
        (status = 503, description = "The database does not answer", body = super::openapi::HealthDoc),
    ))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db_ok = state.core.store().is_up().await;
    let transport = match &state.transport {
        TransportHealth::Socketio => json!("socketio"),
        TransportHealth::Amqp(link) => json!({"amqp": match link() {
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
        }}),
    };
    let mut body = json!({
        "status": if db_ok { "ok" } else { "unavailable" },
        "database": if db_ok { "ok" } else { "unavailable" },
        "smtp": state.sender_health,
        "transport": transport,
    });
    // A mailer cut off from the others still accepts and sends: `cluster` informs, and
    // does not make the mailer unready.
    if let Some(cluster) = state.cluster.health().label() {
        body["cluster"] = json!(cluster);
    }
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
