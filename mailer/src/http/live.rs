//! The live page `/`: mail activity as it happens, through socket.io `/live`, with a small
//! socket.io client of this project served as `/live.js` (no CDN, works offline).

use super::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const PAGE: &str = include_str!("../../static/live.html");
const SCRIPT: &str = include_str!("../../static/live.js");

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/live.js", get(script))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
