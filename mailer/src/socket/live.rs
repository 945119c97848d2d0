//! Namespace `/live`, for the live page: it receives `mail-activity`, and asks `catch-up` for
//! what it missed. Without `mailer.live_token` anyone may connect and recipients are masked;
//! with it, a connect must carry `{"token": <live_token>}` and recipients are shown whole
//! (see [`crate::events::LiveRecipients`]).
//!
//! `catch-up` reads the store for anonymous clients, so its cost is bounded: one catch-up at
//! a time per socket, [`CATCH_UPS_AT_ONCE`] at a time in all, [`CATCH_UP_MAX`] items at most
//! per answer; past those the answer is `busy`, and the page asks again a moment later.

use crate::cluster::{Io, MailerAdapter};
use crate::error::MailError;
use crate::events::{LiveRecipients, LiveViewers, live_node_room, live_shard_room, shown_on_live};
use crate::mailer_core::MailerCore;
use crate::metrics::Metrics;
use crate::store::Cursor;
use domain::Secret;
use domain::mail::json_kind;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::InitRes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The text of the connect error, which the live page recognises to ask for the token.
pub const LIVE_UNAUTHORIZED: &str = "unauthorized: /live needs the live token";

/// The changes a `catch-up` without `after` answers: the page's opening rows.
pub const CATCH_UP_LATEST: u64 = 50;
/// The most changes one `catch-up` answers; a full answer means "ask again after it".
pub const CATCH_UP_MAX: u64 = 500;
/// Store reads for `catch-up` running at once, over every `/live` socket.
pub const CATCH_UPS_AT_ONCE: usize = 4;
/// How long a `catch-up` waits for one of those before it is answered `busy`.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// The auth payload of a `/live` CONNECT.
#[derive(Deserialize)]
struct LiveAuth {
    token: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{LIVE_UNAUTHORIZED}")]
struct Unauthorized;

/// What `/live` needs to answer `catch-up`.
#[derive(Clone)]
pub struct CatchUp {
    /// The store's reads.
    pub core: MailerCore,
    /// How recipients are shown.
    pub recipients: LiveRecipients,
    /// Store reads under way for `catch-up`.
    pub slots: Arc<Semaphore>,
}

/// Mounts `/live` on `io`, behind `token` when given. `node` is the mailer's name in a
/// cluster: its browsers join that room, which its emits to the other mailers' browsers
/// leave out.
pub fn mount(
    io: &Io,
    token: Option<Secret>,
    metrics: Arc<Metrics>,
    viewers: LiveViewers,
    catch_up: CatchUp,
    node: Option<String>,
) -> InitRes<crate::cluster::ClusterLink> {
    let next_shard = Arc::new(AtomicUsize::new(0));
    let node_room = node.as_deref().map(live_node_room);
    let on_connect = move |socket: SocketRef<MailerAdapter>| {
        // One disconnect handler for both counts: a second `on_disconnect` would replace it.
        metrics.clients("/live", 1);
        viewers.joined();
        let (metrics, viewers) = (metrics.clone(), viewers.clone());
        socket.on_disconnect(move || {
            metrics.clients("/live", -1);
            viewers.left();
            std::future::ready(())
        });
        // Round robin keeps the shards even; see `LIVE_SHARDS` in `events::live`.
        socket.join(live_shard_room(next_shard.fetch_add(1, Ordering::Relaxed)));
        if let Some(room) = &node_room {
            socket.join(room.clone());
        }
        let running = Arc::new(AtomicBool::new(false));
        let catch_up = catch_up.clone();
        socket.on(
            "catch-up",
            move |TryData(payload): TryData<Value>, ack: AckSender<MailerAdapter>| {
                let (catch_up, running) = (catch_up.clone(), running.clone());
                async move {
                    let reply = answer_catch_up(&catch_up, &running, payload.ok()).await;
                    let _ = ack.send(&reply);
                }
            },
        );
        std::future::ready(())
    };
    match token {
        None => io.ns("/live", on_connect),
        Some(token) => {
            let authenticate = move |TryData(auth): TryData<LiveAuth>| {
                let accepted = matches!(&auth, Ok(a) if token.matches(&a.token));
                async move { if accepted { Ok(()) } else { Err(Unauthorized) } }
            };
            io.ns("/live", on_connect.with(authenticate))
        }
    }
}

/// Reads `{after?: cursor}`: absent, null, `{}` and `{"after": null}` ask for the latest.
fn after_of(payload: Option<Value>) -> Result<Option<Cursor>, MailError> {
    let bad = |what: &str| {
        MailError::invalid(
            "invalid_cursor",
            format!(
                "catch-up takes {{\"after\": <cursor>}} or {{}}, where a cursor is the digits of a mail-activity's cursor; got {what}."
            ),
        )
    };
    let after = match payload {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(mut o)) => o.remove("after"),
        Some(other) => return Err(bad(json_kind(&other))),
    };
    match after {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Cursor::parse(&text)
            .map(Some)
            .ok_or_else(|| bad(&format!("{text:?}"))),
        Some(other) => Err(bad(&format!("{} as after", json_kind(&other)))),
    }
}

/// The ack of one `catch-up`: `{items, cursor}`, or `{error, message}`.
async fn answer_catch_up(
    catch_up: &CatchUp,
    running: &AtomicBool,
    payload: Option<Value>,
) -> Value {
    let after = match after_of(payload) {
        Ok(after) => after,
        Err(e) => return e.to_ack(),
    };
    let busy = || {
        MailError::invalid("busy", "too many catch-ups at once; ask again in a second.").to_ack()
    };
    if running.swap(true, Ordering::AcqRel) {
        return busy();
    }
    let reply = match tokio::time::timeout(CATCH_UP_WAIT, catch_up.slots.acquire()).await {
        Ok(Ok(_slot)) => {
            let limit = if after.is_some() {
                CATCH_UP_MAX
            } else {
                CATCH_UP_LATEST
            };
            match catch_up.core.catch_up(after, limit).await {
                Ok(events) => {
                    let cursor = events
                        .last()
                        .map(|e| e.cursor)
                        .or(after)
                        .unwrap_or_default();
                    let items: Vec<Value> = events
                        .into_iter()
                        .filter_map(|e| shown_on_live(e, catch_up.recipients))
                        .collect();
                    json!({"items": items, "cursor": cursor})
                }
                Err(e) => e.to_ack(),
            }
        }
        _ => busy(),
    };
    running.store(false, Ordering::Release);
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_up_names_what_it_cannot_read() {
        assert_eq!(after_of(None).unwrap(), None);
        assert_eq!(after_of(Some(json!({}))).unwrap(), None);
        assert_eq!(
            after_of(Some(json!({"after": "0000000000000042"}))).unwrap(),
            Some(Cursor(42))
        );
        for bad in [
            json!({"after": "-1"}),
            json!({"after": "forty-two"}),
            json!({"after": 42}),
            json!("0000000000000042"),
            json!({"after": "1".repeat(40)}),
        ] {
            let e = after_of(Some(bad.clone())).expect_err(&bad.to_string());
            assert_eq!(e.code(), "invalid_cursor", "{bad}");
        }
    }
}
