//! The `/live` side of `mail-activity`: a bounded queue and one task that broadcasts.
//!
//! The doors and the outcome writer only put an event in the queue, which never waits, and
//! one task writes what gathered every [`GATHER`] at most, so however many browsers watch
//! `/live`, the answer to the sender is not delayed, and the cost of `/live` grows with the
//! number of browsers, not of mails. When the queue is full (the browsers cannot keep up),
//! new events are dropped for `/live` and counted in `live_events_dropped_total`: the page
//! is a view, and the store and `/` keep every change; `catch-up` reads it back.
//!
//! Masking is done here, by the mailer whose change it is, for every viewer: each `/live`
//! viewer is in the room of what it may see ([`LiveRecipients::room`]), and a change goes
//! to each room in that room's form only. With `mailer.cluster`, each mailer writes its own
//! changes to its own browsers shard by shard as above (they are all of one kind: its
//! `live_token` decides), and to every other mailer's browsers with two emits per event,
//! the masked form to the anonymous room and the whole form to the token holders' room:
//! its browsers are all in a room named by the mailer ([`live_node_room`]), which those
//! emits leave out, so the adapter carries them to the others only. A mailer thus never
//! relies on another's `live_token` to mask what its own viewers see.

use super::MailActivityEvent;
use crate::cluster::Io;
use crate::store::Cursor;
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Events waiting for the `/live` broadcast; beyond this they are dropped.
const QUEUE: usize = 1024;
/// How long the broadcaster gathers events before it writes them to every browser: the
/// answer to the request that queued the first one is out by then, and each browser gets
/// the events of that moment in one write instead of one write each.
const GATHER: Duration = Duration::from_millis(50);

/// `/live` sockets are spread over this many rooms, and a broadcast writes to one room at a
/// time, letting other work run in between: a request that arrives meanwhile waits for at
/// most one room's writes, not for every browser's.
pub const LIVE_SHARDS: usize = 32;

/// The room of shard `n` of `/live`.
pub fn live_shard_room(n: usize) -> String {
    format!("live-shard:{}", n % LIVE_SHARDS)
}

/// The room every `/live` socket of the mailer `node` is in.
pub fn live_node_room(node: &str) -> String {
    format!("live-node:{node}")
}

/// How `/live` shows recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveRecipients {
    /// `{"email": "a…@example.com"}`: no name, the address cut to its first character and
    /// its domain, and every address in `error` so too. For anonymous viewers
    /// (`mailer.live_token` unset).
    Masked,
    /// The recipient as the request gave it (viewers presented `mailer.live_token`).
    Whole,
}

impl LiveRecipients {
    /// Both forms, in the order they are emitted.
    pub const BOTH: [LiveRecipients; 2] = [LiveRecipients::Masked, LiveRecipients::Whole];

    /// What this mailer's `/live` viewers see: whole recipients only behind its live token.
    pub fn of(config: &domain::config::MailerConfig) -> Self {
        match config.live_token {
            Some(_) => LiveRecipients::Whole,
            None => LiveRecipients::Masked,
        }
    }

    /// The `/live` room of the viewers shown this form, on every mailer of a cluster.
    pub fn room(self) -> &'static str {
        match self {
            LiveRecipients::Masked => "live-viewers:anonymous",
            LiveRecipients::Whole => "live-viewers:token",
        }
    }
}

/// How many sockets are connected to one namespace of this mailer (`/` or `/live`): with
/// none, and no other mailer to reach, its events are not even built.
#[derive(Clone, Default)]
pub struct Listeners(Arc<AtomicUsize>);

impl Listeners {
    /// A socket connected.
    pub fn joined(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A socket went away.
    pub fn left(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// The handle that queues events for `/live`; cheap to clone.
#[derive(Clone)]
pub struct LiveFeed {
    queue: mpsc::Sender<MailActivityEvent>,
    dropped: Counter,
    viewers: Listeners,
    /// Other mailers' browsers may be watching: events are queued even with none here.
    cluster: bool,
}

/// `{"email": "a…@example.com"}`: the recipient as anonymous `/live` viewers see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MaskedRecipient {
    /// The address's first character, an ellipsis (U+2026), `@` and the domain.
    email: String,
}

/// `mail-activity` as `/live` shows it when recipients are masked.
#[derive(Serialize)]
struct MaskedActivity<'a> {
    id: domain::MailRequestId,
    template: domain::Template,
    to: MaskedRecipient,
    status: &'static str,
    at: &'a str,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    cursor: Cursor,
}

impl LiveFeed {
    /// Starts the task that broadcasts to `/live` of `io`, showing this mailer's browsers
    /// recipients as `recipients` says and counting dropped events in `dropped`. With `node`
    /// (the mailer's name in a cluster), events also go to the other mailers' browsers, in
    /// both forms.
    pub fn start(
        io: Io,
        recipients: LiveRecipients,
        dropped: Counter,
        node: Option<String>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let cluster = node.is_some();
        tokio::spawn(broadcast(io, recipients, rx, node));
        Self {
            queue,
            dropped,
            viewers: Listeners::default(),
            cluster,
        }
    }

    /// The count of `/live` browsers that `/live`'s connect and disconnect handlers keep.
    pub fn viewers(&self) -> Listeners {
        self.viewers.clone()
    }

    /// True when a browser may see what is queued: one is connected here, or another
    /// mailer's may be.
    pub(super) fn heard(&self) -> bool {
        self.cluster || self.viewers.any()
    }

    /// Queues `event` for `/live`, or drops it when the queue is full. With no browser on
    /// `/live` there is nobody to write to: each event would otherwise cost one emit per shard.
    pub fn push(&self, event: MailActivityEvent) {
        if !self.heard() {
            return;
        }
        if let Err(TrySendError::Full(_)) = self.queue.try_send(event) {
            self.dropped.inc();
        }
    }
}

async fn broadcast(
    io: Io,
    recipients: LiveRecipients,
    mut rx: mpsc::Receiver<MailActivityEvent>,
    node: Option<String>,
) {
    let own_browsers = node.as_deref().map(live_node_room);
    let mut batch = Vec::with_capacity(QUEUE);
    while rx.recv_many(&mut batch, QUEUE).await > 0 {
        tokio::time::sleep(GATHER).await;
        while batch.len() < QUEUE {
            match rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if let (Some(own), Some(live)) = (&own_browsers, io.of("/live")) {
            for form in LiveRecipients::BOTH {
                for event in &batch {
                    let Some(payload) = shown_on_live(event, form) else {
                        continue;
                    };
                    if let Err(e) = live
                        .clone()
                        .to(form.room())
                        .except(own.clone())
                        .emit("mail-activity", &payload)
                        .await
                    {
                        tracing::debug!(error = %e, "could not emit mail-activity to other mailers' /live");
                    }
                }
            }
        }
        let payloads: Vec<serde_json::Value> = batch
            .drain(..)
            .filter_map(|event| shown_on_live(&event, recipients))
            .collect();
        for shard in 0..LIVE_SHARDS {
            for payload in &payloads {
                let Some(live) = io.of("/live") else {
                    break;
                };
                if let Err(e) = live
                    .local()
                    .to(live_shard_room(shard))
                    .emit("mail-activity", payload)
                    .await
                {
                    tracing::debug!(error = %e, "could not emit mail-activity to /live");
                }
            }
            tokio::task::yield_now().await;
        }
    }
}

/// `event` as `/live` shows it (live, and in a `catch-up` answer).
pub fn shown_on_live(
    event: &MailActivityEvent,
    recipients: LiveRecipients,
) -> Option<serde_json::Value> {
    let value = match recipients {
        LiveRecipients::Whole => serde_json::to_value(event),
        LiveRecipients::Masked => serde_json::to_value(MaskedActivity {
            id: event.id,
            template: event.template.clone(),
            to: MaskedRecipient {
                email: domain::mask_email(event.to.email.as_str()),
            },
            status: event.status,
            at: &event.at,
            attempts: event.attempts,
            error: event.error.as_deref().map(domain::mask_addresses_in),
            cursor: event.cursor,
        }),
    };
    value.ok()
}
