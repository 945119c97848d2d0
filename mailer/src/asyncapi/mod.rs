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

use crate::templates::Templates;
use crate::templates::live::LiveTemplates;
use axum::body::Bytes;
use domain::config::{Config, TransportKind};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    /// The mail request's variants of the templates outside the built-in set, from the
    /// catalog in force.
    pub templates: Vec<serde_json::Value>,
}

impl Facts {
    /// The facts of a mailer running with `config`, bound to `listen`.
    pub fn of(config: &Config, listen: SocketAddr) -> Self {
        Self {
            listen,
            live_token: config.mailer.live_token.is_some(),
            transport: config.transport.kind,
            topology: TopologyNames::of(&config.transport.amqp),
            templates: Vec::new(),
        }
    }
}

/// The document and its page, each built at its first request (not at start: most mailers
/// are never asked, and the start stays as fast as it was) and again at the first request
/// after the set of templates changed, since the mail request lists the catalog's templates;
/// cheap to clone.
#[derive(Clone)]
pub struct AsyncApiDocument(Arc<Built>);

struct Built {
    facts: Facts,
    templates: Arc<LiveTemplates>,
    cache: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    set: Option<Arc<Templates>>,
    json: Option<Bytes>,
    page: Option<Bytes>,
}

impl AsyncApiDocument {
    /// The document of the mailer described by `facts`, listing the templates in force.
    pub fn with_templates(facts: Facts, templates: Arc<LiveTemplates>) -> Self {
        Self(Arc::new(Built {
            facts,
            templates,
            cache: Mutex::default(),
        }))
    }

    /// Answers `pick` of the cache, built by `build` from the facts of the templates in force
    /// when it is empty or of another set.
    fn cached(
        &self,
        pick: fn(&mut Cached) -> &mut Option<Bytes>,
        build: fn(&Facts) -> Bytes,
    ) -> Bytes {
        let set = self.0.templates.current();
        let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.set.as_ref().is_some_and(|s| Arc::ptr_eq(s, &set)) {
            *cache = Cached {
                set: Some(set.clone()),
                ..Cached::default()
            };
        }
        if let Some(bytes) = pick(&mut cache) {
            return bytes.clone();
        }
        let mut facts = self.0.facts.clone();
        facts.templates = set.request_variants();
        let bytes = build(&facts);
        *pick(&mut cache) = Some(bytes.clone());
        bytes
    }

    /// The serialized document.
    pub fn json(&self) -> Bytes {
        self.cached(
            |c| &mut c.json,
            |facts| Bytes::from(document::build(facts).to_string()),
        )
    }

    /// The document as an HTML page.
    pub fn page(&self) -> Bytes {
        self.cached(
            |c| &mut c.page,
            |facts| Bytes::from(page::render(&document::build(facts))),
        )
    }
}

#[cfg(test)]
mod tests;
