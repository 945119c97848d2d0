//! What `/metrics` shows, in the Prometheus text format (prometheus-client).
//!
//! One [`Metrics`] is built at start and shared; every counter is lock-free, so counting on
//! the hot path (each accepted request, each SMTP send) costs an atomic add.

use crate::store::WriteCounters;
use domain::Template;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;

/// Labels of HTTP request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route (`/mails/{id}`), never the raw path.
    pub route: String,
    /// The response status code.
    pub status: u16,
}

/// Labels of `mail_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `socketio`, `http` or `amqp`.
    pub door: &'static str,
    /// The answer: `accepted`, `duplicate`, `rejected`, `unavailable`.
    pub status: &'static str,
}

/// The labels of `deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The new status.
    pub status: &'static str,
    /// The template's name.
    pub template: Cow<'static, str>,
}

/// The `class` label of `smtp_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// `transient`, `permanent`, `recipient` (a mailbox refused at `RCPT TO`),
    /// `connection`, `timeout` or `message`.
    pub class: &'static str,
}

/// The `namespace` label of `socketio_connected_clients`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    /// `/` or `/live`.
    pub namespace: &'static str,
}

/// What an operator did to deliveries (`mail_operations_total`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// `retry` (one per delivery put back to `queued`) or `cancel`.
    pub operation: &'static str,
}

/// Where an address put on the suppression list came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `smtp` (a refusal at `RCPT TO`), `api` (`POST /suppressions`), `bounce` or `complaint`
    /// (a report sent back).
    pub source: &'static str,
}

/// How a reload of the templates, or a webhook attempt, ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// A reload: `loaded` (the new set is in force) or `refused` (the running set stays). A
    /// webhook attempt: `delivered` or `failed`.
    pub result: &'static str,
}

/// The `reason` label of a refused socket.io request, and of a deleted delivery record.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A refusal: `origin` (a browser origin not allowed), `sessions` (`mailer.max_sockets`
    /// reached) or `viewers` (an anonymous `/live` viewer past `mailer.max_live_sockets`). A
    /// deletion: `age` (`mailer.retention`) or `erasure` (`DELETE /recipients/{email}`, or a
    /// deleted account's last mail).
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the mailer.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP latency by route.
    pub http_duration: HistogramFamily<HttpLabels>,
    /// Mail requests by door and answer.
    pub mail_requests: Family<RequestLabels, Counter>,
    /// Deliveries by final or intermediate status, and template.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Time of each SMTP send.
    pub smtp_send_duration: Histogram,
    /// SMTP errors by class.
    pub smtp_errors: Family<ClassLabel, Counter>,
    /// Handoffs repeated when the server may already have taken the mail.
    pub smtp_possible_resends: Counter,
    /// Connected socket.io clients by namespace.
    pub socketio_clients: Family<NamespaceLabel, Gauge>,
    /// socket.io requests refused before the engine saw them, by reason.
    pub socketio_refused: Family<ReasonLabel, Counter>,
    /// engine.io sessions held now.
    pub socketio_sessions: Gauge,
    /// `mail-activity` events not shown on `/live` because its queue was full.
    pub live_events_dropped: Counter,
    /// Transactions committed by the SQLite writer.
    pub store_commits: Counter,
    /// Rows those transactions inserted, claimed or updated.
    pub store_rows: Counter,
    /// Pauses of the SQLite writer for a checkpoint of a long WAL.
    pub store_checkpoint_waits: Counter,
    /// Syncs of the SQLite writer's log, each before the answers of the commits it covers.
    pub store_syncs: Counter,
    /// Deliveries retried or cancelled by an operator.
    pub operations: Family<OperationLabel, Counter>,
    /// Addresses put on the suppression list, by source.
    pub suppressions: Family<SourceLabel, Counter>,
    /// Delivery records deleted, by reason (`age`, `erasure`).
    pub records_deleted: Family<ReasonLabel, Counter>,
    /// Reloads of the templates, by result.
    pub template_reloads: Family<ResultLabel, Counter>,
    /// Webhook attempts, by result (`delivered`, `failed`).
    pub webhook_attempts: Family<ResultLabel, Counter>,
    /// Webhook events given up after their last attempt.
    pub webhook_events_failed: Counter,
    /// Webhook events waiting for delivery (read every few seconds).
    pub webhook_backlog: Gauge,
    /// Reports received by the bounce intake, by what they did.
    pub bounce_reports: Family<KindLabel, Counter>,
}

/// What a report received by the bounce intake did.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `bounce` (a delivery became `bounced`, or was already), `delay` (recorded only),
    /// `complaint`, or `ignored` (no report, another feedback type, a delivered notice, or a
    /// delivery that is not held).
    pub kind: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        runtime::telemetry::register_metrics(&mut registry);
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(latency_histogram);
        let mail_requests = Family::<RequestLabels, Counter>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let smtp_send_duration = latency_histogram();
        let smtp_errors = Family::<ClassLabel, Counter>::default();
        let smtp_possible_resends = Counter::default();
        let socketio_clients = Family::<NamespaceLabel, Gauge>::default();
        let socketio_refused = Family::<ReasonLabel, Counter>::default();
        let socketio_sessions = Gauge::default();
        let live_events_dropped = Counter::default();
        let store_commits = Counter::default();
        let store_rows = Counter::default();
        let store_checkpoint_waits = Counter::default();
        let store_syncs = Counter::default();
        let operations = Family::<OperationLabel, Counter>::default();
        let suppressions = Family::<SourceLabel, Counter>::default();
        let records_deleted = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "records_deleted",
            "Delivery records deleted with their .eml files, by reason (age: mailer.retention; erasure: DELETE /recipients)",
            records_deleted.clone(),
        );
        let template_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "template_reloads",
            "Reloads of the templates (SIGHUP or a change in mailer.templates_dir) by result: loaded, or refused and the running set kept",
            template_reloads.clone(),
        );
        registry.register(
            "mail_operations",
            "Deliveries an operator retried (failed back to queued) or cancelled, by operation",
            operations.clone(),
        );
        registry.register(
            "suppressions_added",
            "Addresses put on the suppression list, by source (smtp: refused at RCPT TO; api)",
            suppressions.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            http_duration.clone(),
        );
        registry.register(
            "mail_requests",
            "Mail requests received, by door and answer",
            mail_requests.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery status changes, by new status and template",
            deliveries.clone(),
        );
        registry.register(
            "smtp_send_duration_seconds",
            "Time of each SMTP send (or .eml write)",
            smtp_send_duration.clone(),
        );
        registry.register("smtp_errors", "SMTP errors by class", smtp_errors.clone());
        registry.register(
            "smtp_possible_resends",
            "Mails handed to SMTP again when the server may already have taken them",
            smtp_possible_resends.clone(),
        );
        registry.register(
            "socketio_connected_clients",
            "Connected socket.io clients by namespace",
            socketio_clients.clone(),
        );
        registry.register(
            "socketio_refused",
            "socket.io sessions and /live viewers refused, by reason (origin, sessions, viewers)",
            socketio_refused.clone(),
        );
        registry.register(
            "socketio_sessions",
            "engine.io sessions held (at most mailer.max_sockets)",
            socketio_sessions.clone(),
        );
        registry.register(
            "live_events_dropped",
            "mail-activity events not shown on /live because its queue was full",
            live_events_dropped.clone(),
        );
        registry.register(
            "store_commits",
            "Transactions committed by the delivery store's SQLite writer (SQLite file only)",
            store_commits.clone(),
        );
        registry.register(
            "store_rows_written",
            "Rows inserted, claimed or updated by those transactions (rows per commit shows the batching)",
            store_rows.clone(),
        );
        registry.register(
            "store_checkpoint_waits",
            "Times the SQLite writer paused until a checkpoint ended because the WAL had passed 4,096 frames (a quick rise means a reader keeps the log from starting over)",
            store_checkpoint_waits.clone(),
        );
        registry.register(
            "store_syncs",
            "Syncs of the SQLite WAL to disk, each shared by the commits made since the last and made before any of them is answered (SQLite file only)",
            store_syncs.clone(),
        );
        let bounce_reports = Family::<KindLabel, Counter>::default();
        registry.register(
            "bounce_reports",
            "Messages and reports received by the bounce intake, by what they did (bounce, delay, complaint, ignored)",
            bounce_reports.clone(),
        );
        let webhook_attempts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook requests sent, by result (delivered: a 2xx answer; failed: any other answer, a timeout or no connection)",
            webhook_attempts.clone(),
        );
        let webhook_events_failed = Counter::default();
        registry.register(
            "webhook_events_failed",
            "Webhook events given up after their last attempt",
            webhook_events_failed.clone(),
        );
        let webhook_backlog = Gauge::default();
        registry.register(
            "webhook_backlog",
            "Webhook events waiting for delivery, in the whole store (read every 5 s)",
            webhook_backlog.clone(),
        );
        // Shown at 0 before the first attempt or report, so that a dashboard's `rate()` has
        // a series to draw from the start.
        for result in ["delivered", "failed"] {
            let _ = webhook_attempts.get_or_create(&ResultLabel { result });
        }
        for kind in ["bounce", "delay", "complaint", "ignored"] {
            let _ = bounce_reports.get_or_create(&KindLabel { kind });
        }
        Self {
            registry,
            webhook_attempts,
            webhook_events_failed,
            webhook_backlog,
            bounce_reports,
            http_requests,
            http_duration,
            mail_requests,
            deliveries,
            smtp_send_duration,
            smtp_errors,
            smtp_possible_resends,
            socketio_clients,
            socketio_refused,
            socketio_sessions,
            live_events_dropped,
            store_commits,
            store_rows,
            store_checkpoint_waits,
            store_syncs,
            operations,
            suppressions,
            records_deleted,
            template_reloads,
        }
    }

    /// Counts `n` delivery records deleted for `reason`.
    pub fn count_deleted(&self, reason: &'static str, n: u64) {
        self.records_deleted
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }

    /// Counts one reload of the templates.
    pub fn count_template_reload(&self, result: &'static str) {
        self.template_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts one report received by the bounce intake.
    pub fn count_report(&self, kind: &'static str) {
        self.bounce_reports.get_or_create(&KindLabel { kind }).inc();
    }

    /// Counts one webhook attempt.
    pub fn count_webhook_attempt(&self, delivered: bool) {
        let result = if delivered { "delivered" } else { "failed" };
        self.webhook_attempts
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts `n` deliveries an operator retried or cancelled.
    pub fn count_operation(&self, operation: &'static str, n: u64) {
        self.operations
            .get_or_create(&OperationLabel { operation })
            .inc_by(n);
    }

    /// Counts one address put on the suppression list.
    pub fn count_suppression(&self, source: &'static str) {
        self.suppressions
            .get_or_create(&SourceLabel { source })
            .inc();
    }

    /// The counters the SQLite writer moves.
    pub fn write_counters(&self) -> WriteCounters {
        WriteCounters {
            commits: self.store_commits.clone(),
            rows: self.store_rows.clone(),
            checkpoint_waits: self.store_checkpoint_waits.clone(),
            syncs: self.store_syncs.clone(),
        }
    }

    /// Counts one answered mail request.
    pub fn count_request(&self, door: &'static str, status: &'static str) {
        self.mail_requests
            .get_or_create(&RequestLabels { door, status })
            .inc();
    }

    /// Counts one delivery status change of a mail of `template`.
    pub fn count_delivery(&self, status: &'static str, template: &Template) {
        let template = template.name();
        self.deliveries
            .get_or_create(&DeliveryLabels { status, template })
            .inc();
    }

    /// Counts one SMTP error.
    pub fn count_smtp_error(&self, class: &'static str) {
        self.smtp_errors.get_or_create(&ClassLabel { class }).inc();
    }

    /// Moves the connected-clients gauge of `namespace` by `delta`.
    pub fn clients(&self, namespace: &'static str, delta: i64) {
        self.socketio_clients
            .get_or_create(&NamespaceLabel { namespace })
            .inc_by(delta);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
