//! Namespace `/live`, for the live page: it only receives `mail-activity`. Without
//! `mailer.live_token` anyone may connect and recipients are masked; with it, a connect
//! must carry `{"token": <live_token>}` and recipients are shown whole (see
//! [`crate::events::LiveRecipients`]).

use crate::events::{LiveViewers, live_shard_room};
use crate::metrics::Metrics;
use domain::Secret;
use serde::Deserialize;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The text of the connect error, which the live page recognises to ask for the token.
pub const LIVE_UNAUTHORIZED: &str = "unauthorized: /live needs the live token";

/// The auth payload of a `/live` CONNECT.
#[derive(Deserialize)]
struct LiveAuth {
    token: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{LIVE_UNAUTHORIZED}")]
struct Unauthorized;

/// Mounts `/live` on `io`, behind `token` when given.
pub fn mount(io: &SocketIo, token: Option<Secret>, metrics: Arc<Metrics>, viewers: LiveViewers) {
    let next_shard = Arc::new(AtomicUsize::new(0));
    let on_connect = move |socket: SocketRef| {
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
