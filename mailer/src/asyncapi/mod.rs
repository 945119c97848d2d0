//! The AsyncAPI 3.0.0 document of the mailer's event side (socket.io and AMQP), and the
//! page that shows it. The HTTP side only serves them (`crate::http::asyncapi`).
//!
//! - [`document`] assembles the document;
//! - [`socketio`] and [`amqp`] describe the two transports;
//! - [`schemas`] takes every payload schema from the type serialized on the wire, through
//!   its `utoipa::ToSchema`, as `/openapi.json` does: both documents describe a payload
//!   with one schema;
//! - [`page`] renders the document as HTML on the server, with no script.

mod amqp;
mod blocks;
mod document;
mod page;
mod schemas;
mod socketio;

use axum::body::Bytes;
use domain::config::{Config, TransportKind};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use transport::amqp::TopologyNames;

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

/// The document and its page, each built at its first request (not at start: most mailers
/// are never asked, and the start stays as fast as it was); cheap to clone.
#[derive(Clone)]
pub struct AsyncApiDocument(Arc<Built>);

struct Built {
    facts: Facts,
    json: OnceLock<Bytes>,
    page: OnceLock<Bytes>,
}

impl AsyncApiDocument {
    /// The document of the mailer described by `facts`.
    pub fn new(facts: Facts) -> Self {
        Self(Arc::new(Built {
            facts,
            json: OnceLock::new(),
            page: OnceLock::new(),
        }))
    }

    /// The serialized document.
    pub fn json(&self) -> Bytes {
        self.0
            .json
            .get_or_init(|| Bytes::from(document::build(&self.0.facts).to_string()))
            .clone()
    }

    /// The document as an HTML page.
    pub fn page(&self) -> Bytes {
        self.0
            .page
            .get_or_init(|| Bytes::from(page::render(&document::build(&self.0.facts))))
            .clone()
    }
}

#[cfg(test)]
mod tests;
