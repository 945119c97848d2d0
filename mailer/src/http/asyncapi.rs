//! `/asyncapi.json`, the AsyncAPI 3.0.0 document of the mailer's event side, and
//! `/asyncapi`, the same document as a page rendered on the server (see
//! [`crate::asyncapi`], which builds both). Both are open, like `/docs`.

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub use crate::asyncapi::{AsyncApiDocument, Facts};

const STYLE: &str = include_str!("../../static/asyncapi.css");

/// The page runs no script and loads nothing but its stylesheet, from the mailer.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/asyncapi.json", get(asyncapi_json))
        .route("/asyncapi", get(asyncapi_page))
        .route("/asyncapi.css", get(page_style))
}

/// The AsyncAPI document of the event side.
#[utoipa::path(get, path = "/asyncapi.json", tag = "operations",
    responses((status = 200, description = "The AsyncAPI 3.0.0 document of the socket.io events and the AMQP topology", body = Object)))]
pub async fn asyncapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.asyncapi.json(),
    )
}

/// The page that shows `/asyncapi.json`.
#[utoipa::path(get, path = "/asyncapi", tag = "operations",
    responses((status = 200, description = "The event side rendered, with no network", body = String, content_type = "text/html")))]
pub async fn asyncapi_page(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        state.asyncapi.page(),
    )
}

async fn page_style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLE,
    )
}
