//! Namespace `/live`, for the live page: it receives `mail-activity`, and asks `catch-up`
//! ([`super::catch_up`]) for what it missed.
//!
//! Without `mailer.live_token` anyone may connect, as an anonymous viewer, shown masked
//! recipients; at most `mailer.max_live_sockets` at once ([`ViewerPool`]), so that viewers
//! cannot take the sessions service clients need. With it, a connect must carry
//! `{"token": <live_token>}` and is shown whole recipients.
//!
//! Every viewer joins the room of what it may see ([`crate::events::LiveRecipients::room`]). Each mailer
//! of a cluster emits every change to both rooms, masked to the one and whole to the other
//! (see `crate::events::live`), so a viewer gets the form its room is for whichever mailer
//! sent the change, and mailers that disagree on `live_token` show nothing more than each
//! one's own setting allows.

use super::catch_up::{self, CatchUp, CatchUpArgs, SocketTurn};
use super::handshake::SessionTicket;
use crate::cluster::{ClusterLink, Io, MailerAdapter};
use crate::events::{Listeners, live_node_room, live_shard_room};
use crate::metrics::{Metrics, ReasonLabel};
use domain::Secret;
use serde::Deserialize;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::InitRes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The text of the connect error, which the live page recognises to ask for the token.
pub const LIVE_UNAUTHORIZED: &str = "unauthorized: /live needs the live token";

/// Why a `/live` connect was refused: the text of its connect error.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("{LIVE_UNAUTHORIZED}")]
    Unauthorized,
    /// The live page recognises `too_many_viewers` and tries again later.
    #[error(
        "too_many_viewers: /live holds as many anonymous viewers as mailer.max_live_sockets allows; try again later"
    )]
    Viewers,
    #[error(
        "too_many_sessions: the mailer holds as many socket.io sessions as mailer.max_sockets allows; try again later"
    )]
    Sessions,
}

/// The auth payload of a socket.io CONNECT: on `/live` the live token (`mailer.live_token`)
/// when one is set; the service token (`transport.socketio.token`) on `/` has this shape too.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SocketAuth)]
pub struct LiveAuth {
    /// The shared secret.
    token: String,
}

/// What `/live` is mounted with.
pub struct LiveSetup {
    /// `mailer.live_token`.
    pub token: Option<Secret>,
    /// `mailer.max_live_sockets`.
    pub max_anonymous: usize,
    /// Client counts and refusals.
    pub metrics: Arc<Metrics>,
    /// The count the `/live` feed reads.
    pub viewers: Listeners,
    /// `catch-up`'s store reads.
    pub catch_up: CatchUp,
    /// The mailer's name in a cluster: its viewers join that room, which its emits to the
    /// other mailers' viewers leave out.
    pub node: Option<String>,
}

/// Anonymous `/live` viewers held at once, at most `mailer.max_live_sockets`.
#[derive(Clone)]
struct ViewerPool {
    held: Arc<AtomicUsize>,
    max: usize,
}

/// One anonymous viewer's place in the pool; the last clone dropped gives it back. Kept in
/// the socket's extensions, removed at disconnect.
#[derive(Clone)]
struct ViewerPass {
    _place: Arc<ViewerPlace>,
}

struct ViewerPlace(Arc<AtomicUsize>);

impl Drop for ViewerPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ViewerPool {
    fn take(&self) -> Option<ViewerPass> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ViewerPass {
                _place: Arc::new(ViewerPlace(self.held.clone())),
            })
    }
}

fn refuse(metrics: &Metrics, reason: &'static str) {
    metrics
        .socketio_refused
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

/// The engine.io session's place of `socket` (every session has one; see `handshake`).
fn ticket(socket: &SocketRef<MailerAdapter>) -> Option<SessionTicket> {
    socket
        .req_parts()
        .extensions
        .get::<SessionTicket>()
        .cloned()
}

/// Lets an anonymous viewer in while the pool has room. A viewer refused gives its
/// session's place back at once: the engine closes that session at its connect timeout.
fn admit_anonymous(
    socket: &SocketRef<MailerAdapter>,
    pool: &ViewerPool,
    metrics: &Metrics,
) -> Result<(), Refused> {
    let ticket = ticket(socket);
    if ticket.as_ref().is_some_and(|t| !t.hold()) {
        refuse(metrics, "sessions");
        return Err(Refused::Sessions);
    }
    match pool.take() {
        Some(pass) => {
            socket.extensions.insert(pass);
            Ok(())
        }
        None => {
            if let Some(ticket) = ticket {
                ticket.release();
            }
            refuse(metrics, "viewers");
            Err(Refused::Viewers)
        }
    }
}

/// Lets a viewer with the live token in; one without gives its session's place back.
fn admit_token_holder(
    socket: &SocketRef<MailerAdapter>,
    accepted: bool,
    metrics: &Metrics,
) -> Result<(), Refused> {
    let ticket = ticket(socket);
    if !accepted {
        if let Some(ticket) = ticket {
            ticket.release();
        }
        return Err(Refused::Unauthorized);
    }
    if ticket.is_some_and(|t| !t.hold()) {
        refuse(metrics, "sessions");
        return Err(Refused::Sessions);
    }
    Ok(())
}

/// Mounts `/live` on `io` as `setup` says.
pub fn mount(io: &Io, setup: LiveSetup) -> InitRes<ClusterLink> {
    let LiveSetup {
        token,
        max_anonymous,
        metrics,
        viewers,
        catch_up,
        node,
    } = setup;
    let kind = catch_up.recipients;
    let next_shard = Arc::new(AtomicUsize::new(0));
    let node_room = node.as_deref().map(live_node_room);
    let counts = metrics.clone();
    let on_connect = move |socket: SocketRef<MailerAdapter>| {
        // One disconnect handler for every count: a second `on_disconnect` would replace it.
        counts.clients("/live", 1);
        viewers.joined();
        let (counts, viewers) = (counts.clone(), viewers.clone());
        socket.on_disconnect(move |socket: SocketRef<MailerAdapter>| {
            counts.clients("/live", -1);
            viewers.left();
            socket.extensions.remove::<ViewerPass>();
            std::future::ready(())
        });
        // Round robin keeps the shards even; see `LIVE_SHARDS` in `events::live`.
        let mut rooms = vec![
            kind.room().to_string(),
            live_shard_room(next_shard.fetch_add(1, Ordering::Relaxed)),
        ];
        rooms.extend(node_room.clone());
        socket.join(rooms);
        let turn = Arc::new(SocketTurn::default());
        let catch_up = catch_up.clone();
        socket.on(
            "catch-up",
            move |TryData(args): TryData<CatchUpArgs>, ack: AckSender<MailerAdapter>| {
                let (catch_up, turn) = (catch_up.clone(), turn.clone());
                async move {
                    let reply = catch_up::answer(&catch_up, &turn, args).await;
                    let _ = ack.send(&reply);
                }
            },
        );
        std::future::ready(())
    };
    match token {
        None => {
            let pool = ViewerPool {
                held: Arc::default(),
                max: max_anonymous,
            };
            let admit = move |socket: SocketRef<MailerAdapter>| {
                std::future::ready(admit_anonymous(&socket, &pool, &metrics))
            };
            io.ns("/live", on_connect.with(admit))
        }
        Some(token) => {
            let authenticate =
                move |socket: SocketRef<MailerAdapter>, TryData(auth): TryData<LiveAuth>| {
                    let accepted = matches!(&auth, Ok(a) if token.matches(&a.token));
                    std::future::ready(admit_token_holder(&socket, accepted, &metrics))
                };
            io.ns("/live", on_connect.with(authenticate))
        }
    }
}
