//! `GET /health` and `GET /metrics`.

use crate::outbox::{Backlog, backlog};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;
use transport::LinkState;
use utoipa::ToSchema;

/// How long `/health` waits for the database.
const DATABASE_DEADLINE: Duration = Duration::from_secs(2);

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthBody {
    /// `ok`, or `unavailable` when the database does not answer.
    status: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
    /// `connected` or `disconnected`. A disconnected transport does not make the service
    /// unready: the outbox keeps the mail requests until it is back.
    #[schema(value_type = String)]
    transport: LinkState,
    /// Mail requests waiting to be published; absent when the database does not answer.
    outbox: Option<Backlog>,
}

/// `GET /health`: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "ready", body = HealthBody),
        (status = 503, description = "the database does not answer", body = HealthBody)))]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthBody>) {
    let backlog = tokio::time::timeout(DATABASE_DEADLINE, backlog(&state.db)).await;
    let transport = state.transport.state();
    match backlog {
        Ok(Ok(backlog)) => {
            record_backlog(&state, &backlog);
            (
                StatusCode::OK,
                Json(HealthBody {
                    status: "ok",
                    database: "ok",
                    transport,
                    outbox: Some(backlog),
                }),
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database did not answer");
            unavailable(transport)
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer within 2 s");
            unavailable(transport)
        }
    }
}

fn unavailable(transport: LinkState) -> (StatusCode, Json<HealthBody>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(HealthBody {
            status: "unavailable",
            database: "unavailable",
            transport,
            outbox: None,
        }),
    )
}

fn record_backlog(state: &AppState, backlog: &Backlog) {
    state
        .metrics
        .outbox_pending
        .set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
    state
        .metrics
        .outbox_oldest_pending_seconds
        .set(backlog.oldest_pending_seconds);
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics in the OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // The backlog gauges are read from the database at scrape time, so every instance
    // reports the shared outbox as it is now.
    if let Ok(Ok(backlog)) = tokio::time::timeout(DATABASE_DEADLINE, backlog(&state.db)).await {
        record_backlog(&state, &backlog);
    }
    match state.metrics.encode() {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => crate::error::ApiError::for_bare_status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}
