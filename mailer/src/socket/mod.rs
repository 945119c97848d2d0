//! The socket.io side of the mailer (socketioxide).
//!
//! - Namespace `/`, for services: the token is checked at connect, then `send-mail`,
//!   `get-mail`, `retry-mail`, `cancel-mail`, `join` and `leave` are handled here, each
//!   through the core. The token handshake and the reading of a `send-mail` payload are the
//!   transport crate's (`transport::socketio`), which the users service's client shares.
//! - Namespace `/live`, for browsers ([`live`]): it receives `mail-activity` broadcasts and
//!   asks `catch-up` ([`catch_up`]), with a token when `mailer.live_token` is set.
//! - Limits: [`engine`] caps what one message or polling body may hold, [`handshake`]
//!   refuses foreign browser origins and sessions past `mailer.max_sockets`, and `/live`
//!   holds anonymous viewers to `mailer.max_live_sockets`, a part of those sessions.

mod catch_up;
mod handshake;
mod live;

use crate::cluster::{Cluster, Io, MailerAdapter};
use crate::error::MailError;
use crate::events::{Listeners, LiveRecipients, mail_room, template_room};
use crate::mailer_core::MailerCore;
use crate::metrics::Metrics;
use domain::config::MailerConfig;
use domain::{MailRequestId, Secret, Template};
use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender as Ack, SocketRef as Socket, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use transport::Origin;
use transport::socketio::{ServiceAuth, check_service_auth, decode_send_mail};
use utoipa::ToSchema;

pub use catch_up::{CatchUpAnswer, CatchUpArgs};
pub use handshake::protect;
pub use live::LiveAuth;

/// The largest websocket message or polling body; past it the engine closes that
/// connection. Above the 64 KiB request limit, so an oversize `send-mail` still reaches
/// the handler and gets a `rejected` ack.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The most rooms a socket may join with `join`. The room named by the socket's own id,
/// which the mailer joins for it, does not count.
pub const MAX_ROOMS: usize = 1000;

/// How long a new session may take to join a namespace (socketioxide's default is 45 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type SocketRef = Socket<MailerAdapter>;
type AckSender = Ack<MailerAdapter>;

/// Builds the socket.io layer and its handle with the contract's limits, on the adapter of
/// `cluster` (Redis with `mailer.cluster`, a link that never connects without).
pub fn engine(cluster: &Cluster) -> (SocketIoLayer<MailerAdapter>, Io) {
    SocketIo::builder()
        .max_payload(MAX_MESSAGE_BYTES as u64)
        // A frame longer than this is refused from its header, before its payload is read.
        .ws_max_frame_size(MAX_MESSAGE_BYTES)
        .ws_max_message_size(MAX_MESSAGE_BYTES)
        // Packets queued per socket before emits fail. The default (128) drops acks under
        // load, as every request also broadcasts `mail-activity`.
        .max_buffer_size(8192)
        // A session that joins no namespace is closed after this; until then it holds its
        // place among `mailer.max_sockets`.
        .connect_timeout(CONNECT_TIMEOUT)
        .with_adapter::<MailerAdapter>(cluster.adapter_state())
        .build_layer()
}

/// The counts of sockets each namespace's handlers keep, which decide whether an event is
/// built at all ([`crate::events::Events`]).
pub struct SocketListeners {
    /// The service sockets on `/`.
    pub services: Listeners,
    /// The browsers on `/live`.
    pub live: Listeners,
}

/// Mounts both namespaces on `io`: `/` with the service `token`, `/live` as
/// `mailer.live_token` says. Returns once the adapter has subscribed to both namespaces'
/// channels (at once while Redis is away: the link subscribes when it connects).
pub async fn mount(
    io: &Io,
    token: Secret,
    config: &MailerConfig,
    core: MailerCore,
    listeners: SocketListeners,
    node: Option<String>,
) {
    let metrics = core.metrics().clone();
    let service_metrics = metrics.clone();
    let live_core = core.clone();
    // A connect without the right token gets a connect error and never reaches a handler.
    let authenticate = move |TryData(auth): TryData<ServiceAuth>| {
        std::future::ready(check_service_auth(auth.as_ref().ok(), &token))
    };
    let services = listeners.services;
    let on_connect = move |socket: SocketRef| {
        on_service_connect(socket, core.clone(), service_metrics.clone(), &services);
        std::future::ready(())
    };
    let service = io.ns("/", on_connect.with(authenticate));
    let catch_up = catch_up::CatchUp {
        core: live_core,
        recipients: LiveRecipients::of(config),
        slots: Arc::new(tokio::sync::Semaphore::new(catch_up::CATCH_UPS_AT_ONCE)),
    };
    let live = live::mount(
        io,
        live::LiveSetup {
            token: config.live_token.clone(),
            max_anonymous: config.max_live_sockets,
            metrics,
            viewers: listeners.live,
            catch_up,
            node,
        },
    );
    for (namespace, init) in [("/", service.await), ("/live", live.await)] {
        if let Err(e) = init {
            tracing::error!(namespace, error = ?e, "the socket.io adapter could not start");
        }
    }
}

/// Counts a socket on `/` until it disconnects, in the metrics and in `services`.
fn count_service(socket: &SocketRef, metrics: &Arc<Metrics>, services: &Listeners) {
    metrics.clients("/", 1);
    services.joined();
    let (metrics, services) = (metrics.clone(), services.clone());
    socket.on_disconnect(move || {
        metrics.clients("/", -1);
        services.left();
        std::future::ready(())
    });
}

fn on_service_connect(
    socket: SocketRef,
    core: MailerCore,
    metrics: Arc<Metrics>,
    services: &Listeners,
) {
    // A session that gave its place back when `/live` refused it needs one again.
    let ticket = socket
        .req_parts()
        .extensions
        .get::<handshake::SessionTicket>();
    if ticket.is_some_and(|t| !t.hold()) {
        let _ = socket.disconnect();
        return;
    }
    count_service(&socket, &metrics, services);
    // A room named by the socket id lets one emit reach the sender and the rooms at once.
    socket.join(socket.id.to_string());
    // Decoded here rather than by socketioxide, so a bad payload gets a `rejected` ack
    // instead of silence; a valid one goes to the core, whose answer is the ack.
    let sender_core = core.clone();
    socket.on(
        "send-mail",
        move |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
            let core = sender_core.clone();
            async move {
                let answer = match decode_send_mail(payload) {
                    Ok(request) => {
                        let origin = Origin::Socket(socket.id.to_string());
                        // Boxed, the store's part of the answer stays out of the handler's
                        // task, which socket.io's server moves whole when it spawns it.
                        Box::pin(core.accept_mail_request(request, origin)).await
                    }
                    Err(rejected) => rejected,
                };
                if let Err(e) = ack.send(&answer) {
                    tracing::warn!(error = %e, "could not send the send-mail ack");
                }
            }
        },
    );
    // The rooms this socket joined itself, to hold it to `MAX_ROOMS`. A `std::sync::Mutex`:
    // held for a set operation only.
    let joined: Arc<Mutex<HashSet<String>>> = Arc::default();
    let left = joined.clone();
    // The three events about one mail: same handlers as the REST routes, and each ack is
    // the route's body (the record, or `{"error", "message"}`).
    for event in ["get-mail", "retry-mail", "cancel-mail"] {
        let core = core.clone();
        socket.on(
            event,
            move |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
                let core = core.clone();
                async move {
                    let reply = mail_event_reply(&core, event, &socket, payload.ok()).await;
                    let _ = ack.send(&reply);
                }
            },
        );
    }
    socket.on(
        "join",
        move |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
            let reply = match room_name(payload.ok()) {
                Ok(room) => {
                    let mut rooms = joined.lock().unwrap_or_else(|e| e.into_inner());
                    if rooms.contains(&room) {
                        RoomAck::done()
                    } else if rooms.len() >= MAX_ROOMS {
                        refused(&MailError::invalid(
                            "too_many_rooms",
                            format!(
                                "A socket may be in at most {MAX_ROOMS} rooms; leave one first."
                            ),
                        ))
                    } else {
                        rooms.insert(room.clone());
                        socket.join(room);
                        RoomAck::done()
                    }
                }
                Err(e) => refused(&e),
            };
            let _ = ack.send(&reply);
            std::future::ready(())
        },
    );
    socket.on(
        "leave",
        move |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
            let reply = match room_name(payload.ok()) {
                Ok(room) => {
                    left.lock().unwrap_or_else(|e| e.into_inner()).remove(&room);
                    socket.leave(room);
                    RoomAck::done()
                }
                Err(e) => refused(&e),
            };
            let _ = ack.send(&reply);
            std::future::ready(())
        },
    );
}

async fn mail_event_reply(
    core: &MailerCore,
    event: &str,
    socket: &SocketRef,
    payload: Option<Value>,
) -> Value {
    let id: Option<MailRequestId> = match &payload {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Object(o)) => o
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    };
    let Some(id) = id else {
        return MailError::InvalidId.to_ack();
    };
    let origin = Origin::Socket(socket.id.to_string());
    let record = match event {
        "retry-mail" => core.retry_mail(id, &origin).await,
        "cancel-mail" => core.cancel_mail(id).await,
        _ => core.get_mail(id).await,
    };
    match record {
        Ok(record) => match serde_json::to_value(&record) {
            Ok(value) => value,
            Err(e) => MailError::Corrupt(e.to_string()).to_ack(),
        },
        Err(e) => e.to_ack(),
    }
}

/// The ack of a `join` or `leave` that was refused: `{"ok": false, "error", "message"}`.
fn refused(e: &MailError) -> RoomAck {
    RoomAck {
        ok: false,
        error: Some(e.code()),
        message: Some(e.message()),
    }
}

/// The ack of `join` and `leave`: `{"ok": true}`, or `{"ok": false, "error", "message"}`
/// with `invalid_room` or (`join` only, past 1,000 rooms) `too_many_rooms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomAck {
    /// Whether the socket is now in (or out of) the room.
    ok: bool,
    /// When refused: a stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<&'static str>,
    /// When refused: one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    message: Option<String>,
}

impl RoomAck {
    /// The socket is in (or out of) the room.
    fn done() -> Self {
        Self {
            ok: true,
            error: None,
            message: None,
        }
    }
}

/// Checks a `join`/`leave` room name: `mail:<uuid>` or `template:<name>`.
fn room_name(payload: Option<Value>) -> Result<String, MailError> {
    let bad = |message: String| MailError::invalid("invalid_room", message);
    let Some(Value::String(name)) = payload else {
        return Err(bad(
            "a room name is expected: mail:<id> or template:<name>.".into(),
        ));
    };
    if let Some(id) = name.strip_prefix("mail:") {
        let id: MailRequestId = id.parse().map_err(|_| {
            bad(format!(
                "{name:?} is not a mail room: the id after mail: must be a UUID."
            ))
        })?;
        return Ok(mail_room(id));
    }
    if let Some(template) = name.strip_prefix("template:") {
        let template = Template::parse(template).map_err(|e| bad(format!("{}.", e.message)))?;
        return Ok(template_room(&template));
    }
    Err(bad(format!(
        "{name:?} is not a room: expected mail:<id> or template:<name>."
    )))
}
