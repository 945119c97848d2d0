//! Prometheus metrics of the users service, served at `/metrics`.
//!
//! HTTP metrics are labelled with the matched route template (`/users/{id}`), never the raw
//! path, and with the method as one of the standard ones or `other`, so the number of series
//! stays bounded whatever clients send.

use crate::hashing::HashCounters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of `http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

/// Labels of `rate_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    /// The `users.limits` key that refused.
    pub limit: &'static str,
}

/// The method as a metrics label: one of the methods the API knows, else `other`.
pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Labels of `http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to about 3 s: a cached GET at the low end, an Argon2id hash under load at the top.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<RouteLabels>,
    pub outbox_published: Counter,
    pub outbox_failures: Counter,
    pub outbox_pending: Gauge,
    pub outbox_oldest_pending_seconds: Gauge<f64, AtomicU64>,
    pub publish_duration: Histogram,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub hashes: HashCounters,
}

impl Metrics {
    /// The registry, with the outbox metrics labelled by `transport` (`socketio` or `amqp`),
    /// so dashboards can compare the two roads.
    pub fn new(transport: domain::config::TransportKind) -> Self {
        let mut registry = Registry::default();
        runtime::telemetry::register_metrics(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            request_duration.clone(),
        );
        let outbox = registry.sub_registry_with_label((
            std::borrow::Cow::Borrowed("transport"),
            std::borrow::Cow::Owned(transport.to_string()),
        ));
        let outbox_published = Counter::default();
        outbox.register(
            "outbox_published",
            "Mail requests the transport confirmed",
            outbox_published.clone(),
        );
        let outbox_failures = Counter::default();
        outbox.register(
            "outbox_publish_failures",
            "Publishes that failed and were scheduled again",
            outbox_failures.clone(),
        );
        let outbox_pending = Gauge::default();
        outbox.register(
            "outbox_pending",
            "Mail requests waiting to be published",
            outbox_pending.clone(),
        );
        let outbox_oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        outbox.register(
            "outbox_oldest_pending_seconds",
            "Age of the oldest mail request waiting to be published",
            outbox_oldest_pending_seconds.clone(),
        );
        let publish_duration = latency_histogram();
        outbox.register(
            "outbox_publish_duration_seconds",
            "Time the transport took to confirm one publish",
            publish_duration.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused, or reset mails not sent, by a limit of users.limits",
            rate_limited.clone(),
        );
        let hashes = HashCounters::default();
        registry.register(
            "password_hashes_refused",
            "Password hashes refused (503) because users.max_pending_hashes were waiting",
            hashes.refused.clone(),
        );
        registry.register(
            "password_hashes_abandoned",
            "Password hashes skipped because their client had gone away",
            hashes.abandoned.clone(),
        );
        registry.register(
            "password_hashes_computed",
            "Argon2id hashes and verifications computed",
            hashes.computed.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            outbox_published,
            outbox_failures,
            outbox_pending,
            outbox_oldest_pending_seconds,
            publish_duration,
            rate_limited,
            hashes,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
