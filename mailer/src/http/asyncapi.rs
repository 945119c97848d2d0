//! `/asyncapi.json`, an AsyncAPI 3.0.0 document of the mailer's event side (socket.io and
//! AMQP), and `/asyncapi`, a page that renders it. Both are open, like `/docs`.
//!
//! - [`document`] assembles the document, taking every payload schema from the generated
//!   OpenAPI document ([`schemas`] adds the payloads that have no REST route);
//! - [`socketio`] and [`amqp`] describe the two transports.
//!
//! The page's renderer is the standalone bundle of `@asyncapi/react-component`, vendored in
//! `mailer/static/vendor/` and served from the binary: the page loads nothing from elsewhere.

mod amqp;
mod document;
pub mod schemas;
mod socketio;

use super::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::config::{Config, TransportKind};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use transport::amqp::TopologyNames;

/// The vendored renderer's version; its files are served under a path that carries it.
pub const RENDERER_VERSION: &str = "3.2.1";

const PAGE: &str = include_str!("../../static/asyncapi.html");
const SCRIPT: &str = include_str!("../../static/asyncapi.js");
const RENDERER: &[u8] = include_bytes!("../../static/vendor/asyncapi-react-component/index.js");
const RENDERER_STYLE: &str =
    include_str!("../../static/vendor/asyncapi-react-component/default.min.css");

/// The live page's policy with one relaxation, `'unsafe-eval'` for scripts: the bundle
/// builds functions from strings at run time (its AsyncAPI parser compiles JSON schemas
/// into validators, and the schema libraries it carries do the same), and without it the
/// bundle stops while loading, on a `script-src` eval violation. No inline script or style
/// is allowed, and the page may load nothing but the mailer's own files.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'unsafe-eval'; \
    style-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The vendored files change only with [`RENDERER_VERSION`], which their path carries.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What the document says of this mailer: where it listens and how it is configured.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The address the mailer is bound to.
    pub listen: SocketAddr,
    /// Whether `mailer.live_token` is set (then `/live` needs it and shows whole recipients).
    pub live_token: bool,
    /// `transport.kind`.
    pub transport: TransportKind,
    /// The RabbitMQ names derived from `transport.amqp`.
    pub topology: TopologyNames,
}

impl Facts {
    /// The facts of a mailer running with `config`, bound to `listen`.
    pub fn of(config: &Config, listen: SocketAddr) -> Self {
        Self {
            listen,
            live_token: config.mailer.live_token.is_some(),
            transport: config.transport.kind,
            topology: TopologyNames::of(&config.transport.amqp),
        }
    }
}

/// The document, built and serialized at its first request (not at start: most mailers are
/// never asked, and the start stays as fast as it was); cheap to clone.
#[derive(Clone)]
pub struct AsyncApiDocument(Arc<(Facts, OnceLock<Bytes>)>);

impl AsyncApiDocument {
    /// The document of the mailer described by `facts`.
    pub fn new(facts: Facts) -> Self {
        Self(Arc::new((facts, OnceLock::new())))
    }

    /// The serialized document.
    pub fn bytes(&self) -> Bytes {
        let (facts, built) = &*self.0;
        built
            .get_or_init(|| Bytes::from(document::build(facts).to_string()))
            .clone()
    }
}

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/asyncapi.json", get(asyncapi_json))
        .route("/asyncapi", get(asyncapi_page))
        .route("/asyncapi.js", get(page_script))
        .route(&renderer_path("index.js"), get(renderer_script))
        .route(&renderer_path("default.min.css"), get(renderer_style))
}

/// Where the vendored `file` is served.
pub fn renderer_path(file: &str) -> String {
    format!("/asyncapi/react-component-{RENDERER_VERSION}/{file}")
}

/// The AsyncAPI document of the event side.
#[utoipa::path(get, path = "/asyncapi.json", tag = "operations",
    responses((status = 200, description = "The AsyncAPI 3.0.0 document of the socket.io events and the AMQP topology", body = Object)))]
pub async fn asyncapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.asyncapi.bytes(),
    )
}

/// The page that renders `/asyncapi.json`.
#[utoipa::path(get, path = "/asyncapi", tag = "operations",
    responses((status = 200, description = "The event side rendered, with no network", body = String, content_type = "text/html")))]
pub async fn asyncapi_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
}

async fn page_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
}

async fn renderer_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        RENDERER,
    )
}

async fn renderer_style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        RENDERER_STYLE,
    )
}

#[cfg(test)]
mod tests;
