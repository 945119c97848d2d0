//! Status webhooks: each status change is POSTed, signed, to every endpoint that wants it.
//!
//! - The events are written by the store, in the commit of the change (an outbox: see the
//!   store's `webhooks` module), so none is lost when the mailer stops.
//! - [`Webhooks::start`] runs the delivery loop: it takes the due events (with several
//!   mailers, each event is taken by one of them for a while: [`LEASE`]), sends each with its
//!   [`signature`], and records the attempt and what becomes of the event: delivered, tried
//!   again after the next of `mailer.webhooks.retry_delays`, or `failed` after the last.
//! - A mail's events reach one endpoint in the order of its changes: an event is not sent
//!   while an earlier one of the same mail to the same endpoint is still pending.
//! - Sending is off the mail's path: a slow endpoint holds one of [`MAX_IN_FLIGHT`] slots
//!   (at most [`MAX_PER_ENDPOINT`] of them) for at most [`TIMEOUT`], and never a delivery.
//! - [`targets`] keeps the URLs off the mailer's own network.

pub mod signature;
pub mod targets;

use crate::error::MailError;
use crate::events::MailActivityEvent;
use crate::metrics::Metrics;
use crate::store::{AttemptDone, Cursor, DueMessage, MessageNext, Store, WebhookAttempt};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::config::WebhooksConfig;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long one attempt may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a mailer holds the events it took: past the timeout, so that another mailer
/// only takes them over from one that stopped.
pub const LEASE: Duration = Duration::from_secs(60);
/// Attempts under way at once, per mailer.
pub const MAX_IN_FLIGHT: usize = 32;
/// Attempts under way at once to one endpoint, so that a slow one leaves the rest their
/// slots.
pub const MAX_PER_ENDPOINT: usize = 8;
/// How often the loop looks for due events when none came back meanwhile.
const POLL: Duration = Duration::from_millis(200);
/// How often the backlog gauge is read.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// The body of every webhook request.
#[derive(Debug, Serialize)]
struct Payload {
    /// `mail.<status>`.
    #[serde(rename = "type")]
    kind: String,
    /// When the status changed (RFC 3339).
    timestamp: String,
    data: MailActivityEvent,
}

/// Sends webhook events; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    /// Built at the first attempt: its TLS roots and pools cost memory a mailer without
    /// endpoints never needs.
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    delays: Arc<[Duration]>,
    allow_private: bool,
    metrics: Arc<Metrics>,
    /// False while the store has neither endpoints nor events: the loop then only looks
    /// again every few seconds (another mailer of a cluster may add an endpoint), or when
    /// this one adds or enables one ([`Webhooks::wake`]).
    active: Arc<AtomicBool>,
}

impl Webhooks {
    /// The sender of `store`'s events, as `config` says.
    pub fn new(store: Store, config: &WebhooksConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            client: Arc::default(),
            delays: config
                .retry_delays
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            allow_private: config.allow_private_targets,
            metrics,
            active: Arc::default(),
        }
    }

    /// The HTTP client, built at its first use.
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would connect on the mailer's behalf, past the resolver's guard.
                .no_proxy()
                .dns_resolver(Arc::new(targets::GuardedResolver {
                    allow_private: self.allow_private,
                }))
                .user_agent(concat!("Facteur-Webhooks/", env!("CARGO_PKG_VERSION")))
                .pool_max_idle_per_host(4)
                .build()
                .unwrap_or_default()
        })
    }

    /// Has the loop look for due events from now on: an endpoint was added or enabled.
    pub fn wake(&self) {
        self.active.store(true, Ordering::Relaxed);
    }

    /// Checks `url` as an endpoint's address (see [`targets`]).
    pub async fn check_url(&self, url: &str) -> Result<String, targets::Refused> {
        targets::check(url, self.allow_private)
            .await
            .map(|u| u.to_string())
    }

    /// Starts the delivery loop; with `release`, it first lets go of the events a stopped
    /// process held (this mailer is the store's only one).
    pub fn start(self, release: bool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if release && let Err(e) = self.store.release_webhooks().await {
                tracing::warn!(error = %e, "could not let go of the webhook events held before");
            }
            self.run().await;
        })
    }

    async fn run(self) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<AttemptDone>();
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut finished: Vec<AttemptDone> = Vec::new();
        let mut backlog_read = Instant::now() - BACKLOG_EVERY;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                Some(done) = done_rx.recv() => finished.push(done),
            }
            while let Ok(done) = done_rx.try_recv() {
                finished.push(done);
            }
            if !finished.is_empty() {
                let batch = std::mem::take(&mut finished);
                for done in &batch {
                    if let Some(n) = in_flight.get_mut(&done.endpoint_id) {
                        *n = n.saturating_sub(1);
                    }
                }
                in_flight.retain(|_, n| *n > 0);
                // Not recorded: the event stays taken until its lease ends, then is sent
                // again (at least once).
                if let Err(e) = self.store.record_webhook_attempts(batch).await {
                    tracing::warn!(error = %e, "could not record webhook attempts");
                }
            }
            if backlog_read.elapsed() >= BACKLOG_EVERY {
                backlog_read = Instant::now();
                if let (Ok(n), Ok(endpoints)) = (
                    self.store.webhook_backlog().await,
                    self.store.webhook_endpoint_count().await,
                ) {
                    self.metrics
                        .webhook_backlog
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                    self.active.store(n > 0 || endpoints > 0, Ordering::Relaxed);
                }
            }
            let busy: usize = in_flight.values().sum();
            if busy >= MAX_IN_FLIGHT || !self.active.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(e) = self
                .take_due(MAX_IN_FLIGHT - busy, &mut in_flight, &done_tx)
                .await
            {
                tracing::warn!(error = %e, "could not read the due webhook events");
            }
        }
    }

    /// Takes up to `free` due events, within each endpoint's share, and sends each in a task
    /// of its own that reports on `done`.
    async fn take_due(
        &self,
        free: usize,
        in_flight: &mut HashMap<String, usize>,
        done: &mpsc::UnboundedSender<AttemptDone>,
    ) -> Result<(), MailError> {
        let now = Utc::now();
        let due = self
            .store
            .webhooks_due(now, 2 * MAX_IN_FLIGHT as u64)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut chosen = Vec::new();
        let mut planned: HashMap<&str, usize> = HashMap::new();
        for message in &due {
            if chosen.len() == free {
                break;
            }
            let busy = in_flight.get(&message.endpoint_id).copied().unwrap_or(0);
            let share = planned.entry(message.endpoint_id.as_str()).or_default();
            if busy + *share < MAX_PER_ENDPOINT {
                *share += 1;
                chosen.push(message.id.clone());
            }
        }
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let taken = self.store.claim_webhooks(chosen, now, until).await?;
        for message in due.into_iter().filter(|m| taken.contains(&m.id)) {
            *in_flight.entry(message.endpoint_id.clone()).or_default() += 1;
            let sender = self.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let attempt = sender.attempt(&message, false).await;
                let _ = done.send(attempt);
            });
        }
        Ok(())
    }

    /// Sends `message` once more now, on an operator's request, records the attempt and
    /// answers it. A success delivers the event; a failure leaves its state and schedule.
    pub async fn send_again(&self, message: DueMessage) -> Result<WebhookAttempt, MailError> {
        let attempt = self.attempt(&message, true).await;
        let shown = attempt.shown.clone();
        self.store.record_webhook_attempts(vec![attempt]).await?;
        Ok(shown)
    }

    /// One attempt at `message`, and what becomes of it (`manual`: an operator's).
    async fn attempt(&self, message: &DueMessage, manual: bool) -> AttemptDone {
        let at = Utc::now();
        let started = Instant::now();
        let (status_code, error) = match self.post(message, at).await {
            Ok(status) if status.is_success() => (Some(status.as_u16()), None),
            Ok(status) => (
                Some(status.as_u16()),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(e) => (None, Some(e)),
        };
        let succeeded = error.is_none();
        let next = if succeeded {
            MessageNext::Delivered
        } else if manual {
            MessageNext::Unchanged
        } else {
            match self.delays.get(message.tries as usize) {
                Some(delay) => MessageNext::RetryAt(
                    at + chrono::Duration::from_std(*delay).unwrap_or_default(),
                ),
                None => MessageNext::Failed,
            }
        };
        self.metrics.count_webhook_attempt(succeeded);
        if next == MessageNext::Failed {
            self.metrics.webhook_events_failed.inc();
            tracing::warn!(
                event = %message.id,
                endpoint = %message.endpoint_id,
                mail = %message.mail_id,
                "a webhook event failed after its last attempt"
            );
        }
        AttemptDone {
            shown: WebhookAttempt {
                id: signature::new_id("att"),
                message_id: message.id.clone(),
                mail_id: message.mail_id,
                event_type: message.event_type(),
                at,
                status_code,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error,
            },
            endpoint_id: message.endpoint_id.clone(),
            cursor: message.cursor,
            next,
        }
    }

    /// POSTs `message`, signed at `at`; the endpoint's status, or why none came.
    async fn post(
        &self,
        message: &DueMessage,
        at: DateTime<Utc>,
    ) -> Result<reqwest::StatusCode, String> {
        let url = targets::parse(&message.url).map_err(|e| e.0)?;
        // An address written as such is connected to without the resolver's guard.
        if !self.allow_private
            && let Some(ip) = targets::literal_ip(&url)
            && !targets::is_public(ip)
        {
            return Err(format!(
                "{ip} is not a public address (mailer.webhooks.allow_private_targets is off)"
            ));
        }
        let body = serde_json::to_vec(&payload(message)).map_err(|e| e.to_string())?;
        let timestamp = at.timestamp();
        let signature = signature::sign(&message.secret, &message.id, timestamp, &body)
            .ok_or("the endpoint's secret cannot be read")?;
        let response = self
            .client()
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status())
    }
}

/// The body of `message`: the same on every attempt.
fn payload(message: &DueMessage) -> Payload {
    let timestamp = message.at.to_rfc3339_opts(SecondsFormat::Millis, true);
    Payload {
        kind: message.event_type(),
        timestamp: timestamp.clone(),
        data: MailActivityEvent {
            id: message.mail_id,
            template: message.template.clone(),
            to: message.to.clone(),
            status: message.status.as_public(),
            at: timestamp,
            attempts: message.attempts,
            error: message.error.clone(),
            cursor: Cursor(message.cursor),
        },
    }
}

/// One sentence for a failed request: a timeout, a refused connection, the guard's refusal.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}
