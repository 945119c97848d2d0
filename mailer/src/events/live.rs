//! The `/live` side of `mail-activity`: a bounded queue and one task that broadcasts.
//!
//! The doors and the outcome writer only put an event in the queue, which never waits, and
//! one task writes what gathered every [`GATHER`] at most, so however many browsers watch
//! `/live`, the answer to the sender is not delayed, and the cost of `/live` grows with the
//! number of browsers, not of mails. When the queue is full (the browsers cannot keep up),
//! new events are dropped for `/live` and counted in `live_events_dropped_total`: the page
//! is a view, and the store and `/` keep every change; `catch-up` reads it back.
//!
//! With `mailer.cluster`, each mailer writes its own changes to its own browsers shard by
//! shard as above, and to every other mailer's browsers with one emit per event: its
//! browsers are all in a room named by the mailer ([`live_node_room`]), which that emit
//! leaves out, so the adapter carries it to the others only.

use super::MailActivityEvent;
use crate::cluster::Io;
use crate::store::Cursor;
use domain::mask_email;
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
    /// its domain. For anonymous viewers (`mailer.live_token` unset).
    Masked,
    /// The recipient as the request gave it (viewers presented `mailer.live_token`).
    Whole,
}

/// How many browsers are connected to `/live`: with none, events are not even queued.
#[derive(Clone, Default)]
pub struct LiveViewers(Arc<AtomicUsize>);

impl LiveViewers {
    /// A browser connected.
    pub fn joined(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A browser went away.
    pub fn left(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// The handle that queues events for `/live`; cheap to clone.
#[derive(Clone)]
pub struct LiveFeed {
    queue: mpsc::Sender<MailActivityEvent>,
    dropped: Counter,
    viewers: LiveViewers,
    /// Other mailers' browsers may be watching: events are queued even with none here.
    cluster: bool,
}

/// A masked `to`.
#[derive(Serialize)]
struct MaskedRecipient {
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

/// `error` as anonymous viewers see it: an SMTP server's refusal often quotes the address
/// (`550 <ada@example.com>: no such user`), and a suppression's reason is what an operator
/// wrote, so every address in it is masked, the recipient's or another's. An address is a
/// run of characters without spaces, quotes or brackets around an `@`.
fn mask_addresses(error: &str) -> String {
    let is_edge = |c: char| c.is_whitespace() || "<>()[]{},;:\"'`".contains(c);
    let mut out = String::with_capacity(error.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                // A sentence's full stop after the address is not part of its domain.
                let trimmed = domain.trim_end_matches('.');
                out.push_str(&mask_email(&format!("{local}@{trimmed}")));
                out.push_str(&domain[trimmed.len()..]);
            }
            _ => out.push_str(word),
        }
        word.clear();
    };
    for c in error.chars() {
        if is_edge(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl LiveFeed {
    /// Starts the task that broadcasts to `/live` of `io`, showing recipients as `recipients`
    /// says and counting dropped events in `dropped`. With `node` (the mailer's name in a
    /// cluster), events also go to the other mailers' browsers.
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
            viewers: LiveViewers::default(),
            cluster,
        }
    }

    /// The count of `/live` browsers that `/live`'s connect and disconnect handlers keep.
    pub fn viewers(&self) -> LiveViewers {
        self.viewers.clone()
    }

    /// Queues `event` for `/live`, or drops it when the queue is full. With no browser on
    /// `/live` there is nobody to write to: each event would otherwise cost one emit per shard.
    pub fn push(&self, event: MailActivityEvent) {
        if !self.cluster && !self.viewers.any() {
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
        let payloads: Vec<serde_json::Value> = batch
            .drain(..)
            .filter_map(|event| shown_on_live(event, recipients))
            .collect();
        if let (Some(own), Some(live)) = (&own_browsers, io.of("/live")) {
            for payload in &payloads {
                if let Err(e) = live
                    .clone()
                    .except(own.clone())
                    .emit("mail-activity", payload)
                    .await
                {
                    tracing::debug!(error = %e, "could not emit mail-activity to other mailers' /live");
                }
            }
        }
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
    event: MailActivityEvent,
    recipients: LiveRecipients,
) -> Option<serde_json::Value> {
    let value = match recipients {
        LiveRecipients::Whole => serde_json::to_value(&event),
        LiveRecipients::Masked => serde_json::to_value(MaskedActivity {
            id: event.id,
            template: event.template,
            to: MaskedRecipient {
                email: mask_email(event.to.email.as_str()),
            },
            status: event.status,
            at: &event.at,
            attempts: event.attempts,
            error: event.error.as_deref().map(mask_addresses),
            cursor: event.cursor,
        }),
    };
    value.ok()
}

#[cfg(test)]
mod tests {
    use super::{mask_addresses, mask_email};

    #[test]
    fn an_error_shown_to_anonymous_viewers_quotes_no_address() {
        assert_eq!(
            mask_addresses(
                "SMTP: permanent error (550): <Ada@example.com> unknown; bob@example.org."
            ),
            "SMTP: permanent error (550): <A\u{2026}@example.com> unknown; b\u{2026}@example.org."
        );
        assert_eq!(
            mask_addresses("try again later (451 4.7.1)"),
            "try again later (451 4.7.1)"
        );
        assert_eq!(mask_addresses("a lone @ sign"), "a lone @ sign");
    }

    #[test]
    fn a_masked_address_keeps_its_first_character_and_its_domain() {
        assert_eq!(mask_email("ada@example.com"), "a\u{2026}@example.com");
        assert_eq!(mask_email("é.x@exemple.fr"), "é\u{2026}@exemple.fr");
        assert_eq!(mask_email("a@b.c"), "a\u{2026}@b.c");
    }
}
