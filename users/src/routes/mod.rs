//! The router: one module per route family, assembled here with the HTTP layers.
//!
//! Layers, outermost first: request id (set when missing, echoed back), a tracing span per
//! request, the error-shape mapper for responses no handler wrote, metrics, a timeout and the
//! 64 KiB body limit.

mod authenticate;
mod email_verifications;
mod health;
mod html_page;
mod openapi;
mod password_resets;
mod reset_page;
mod sessions;
mod user_changes;
mod users;

use crate::error::ApiError;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, method_label};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use domain::config::{PeerRange, any_contains};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::body::Limited;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The largest request body.
const BODY_LIMIT: usize = 64 * 1024;
/// The longest a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the whole application.
pub(crate) fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace_peers = state.trusted_trace_peers.clone();
    let api = Router::new()
        .route("/users", post(users::create_user).get(users::list_users))
        .route(
            "/users/{id}",
            get(users::get_user)
                .patch(user_changes::update_user)
                .delete(user_changes::delete_user),
        )
        .route("/users/{id}/sessions", get(sessions::list_sessions))
        .route(
            "/users/{id}/sessions/{session_id}",
            delete(sessions::end_session),
        )
        .route("/authenticate", post(authenticate::authenticate))
        .route("/session", delete(sessions::end_own_session))
        .route(
            "/password-resets",
            post(password_resets::request_password_reset),
        )
        .route(
            "/password-resets/{token}",
            get(reset_page::show_reset_page).post(password_resets::complete_password_reset),
        )
        .route(
            "/email-verifications",
            post(email_verifications::request_email_verification),
        )
        .route(
            "/email-verifications/{token}",
            get(email_verifications::show_verification_page)
                .post(email_verifications::complete_email_verification),
        )
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::NotFound("there is no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    Router::new()
        .merge(api)
        .merge(openapi::router())
        // Inner layers first: each `Router::layer` call wraps the previous ones and turns
        // their response bodies back into axum's `Body`.
        .layer(
            ServiceBuilder::new()
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
                // The limit wraps the body in its own type; axum's routes take `Body`.
                .map_request(|request: Request<Limited<Body>>| request.map(Body::new))
                .layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |request: &Request| make_span(request, &trace_peers)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(shape_bare_errors))
                .layer(middleware::from_fn_with_state(
                    state.metrics.clone(),
                    record_metrics,
                )),
        )
}

/// The span of one request: its id, method and route template, in a trace that only a peer of
/// `telemetry.trusted_trace_peers` may choose.
fn make_span(request: &Request, trace_peers: &[PeerRange]) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
    // The caller's trace when a trusted peer sends one; else a trace of its own.
    let trusted = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| any_contains(trace_peers, peer.ip()));
    runtime::telemetry::context::start_request_trace(&span, request.headers(), trusted);
    span
}

/// Gives the contract's error body to error responses that no handler wrote: a layer's bare
/// status (the timeout's 408, the body limit's 413) or plain text (an extractor's rejection).
/// Headers such as 405's `Allow` and 429's `Retry-After` are kept.
async fn shape_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let shaped = ApiError::for_bare_status(status);
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.extend(shaped.headers().clone());
    let (_, body) = shaped.into_parts();
    Response::from_parts(parts, body)
}

async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
