//! Several mailers acting as one socket.io server (`mailer.cluster`): socketioxide's Redis
//! adapter carries every broadcast to the other mailers, over a Redis connection kept here.
//!
//! The adapter talks to Redis through a [`Driver`]. Its bundled drivers open one connection
//! at start and never reconnect, so a Redis restart would cut the mailers apart until they
//! restart too. [`ClusterLink`] is a driver that:
//!
//! - never makes the mailer wait for Redis: while Redis is away, a publish returns at once
//!   and the adapter goes on with the local part of each broadcast, so each mailer's own
//!   clients keep their events, and accepting and sending never depend on Redis;
//! - reconnects in the background and subscribes again to every channel the adapter asked
//!   for, so events cross mailers again once Redis is back, with no restart;
//! - says whether it is connected (`/health` `cluster`), and logs a loss once and a return
//!   once.
//!
//! Without `mailer.cluster`, the same adapter runs over a link that never connects, and the
//! event emitters ask for local broadcasts ([`Cluster::is_on`]), which skip the adapter's
//! encoding of each packet for other servers.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use socketioxide::SocketIo;
use socketioxide::adapter::Emitter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The adapter of every namespace of the mailer.
pub type MailerAdapter = CustomRedisAdapter<Emitter, ClusterLink>;

/// The mailer's socket.io handle.
pub type Io = SocketIo<MailerAdapter>;

/// How long one Redis command may take before the link counts as lost. Redis answers a
/// PUBLISH in well under a millisecond; past this it is gone or black-holed, and an emit
/// waiting for it would hold up the announcement of deliveries.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a connected link checks that Redis still answers (a black-holed Redis sends no
/// disconnection).
const PING_EVERY: Duration = Duration::from_secs(1);
/// Waits between connection attempts, doubling up to the last.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Messages from Redis waiting for the adapter, per channel.
const CHANNEL_BUFFER: usize = 4096;

/// `/health`'s `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterHealth {
    /// `mailer.cluster` is null.
    Off,
    /// Events cross mailers.
    Connected,
    /// Redis is away: events reach this mailer's own clients only.
    Disconnected,
}

impl ClusterHealth {
    /// The `/health` value, none when the mailer is alone.
    pub fn label(self) -> Option<&'static str> {
        match self {
            ClusterHealth::Off => None,
            ClusterHealth::Connected => Some("connected"),
            ClusterHealth::Disconnected => Some("disconnected"),
        }
    }
}

type Handlers = HashMap<String, mpsc::Sender<ChanItem>>;

struct Shared {
    /// This mailer's name among the others (the room of its `/live` browsers).
    node: String,
    /// The live connection, none while Redis is away.
    conn: RwLock<Option<MultiplexedConnection>>,
    /// The channels the adapter subscribed to, and where their messages go.
    handlers: RwLock<Handlers>,
    connected: AtomicBool,
    /// Wakes the supervisor when a command finds the connection broken.
    lost: Notify,
    enabled: bool,
}

impl Shared {
    fn new(enabled: bool) -> Self {
        Self {
            node: uuid::Uuid::new_v4().simple().to_string(),
            conn: RwLock::new(None),
            handlers: RwLock::new(HashMap::new()),
            connected: AtomicBool::new(false),
            lost: Notify::new(),
            enabled,
        }
    }
}

/// The adapter's connection to Redis; cheap to clone (the adapter clones it per namespace).
#[derive(Clone)]
pub struct ClusterLink(Arc<Shared>);

/// Why a Redis command of the adapter failed.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct LinkError(String);

/// The cluster side of a mailer: the adapter's constructor state and the link's health.
#[derive(Clone)]
pub struct Cluster {
    link: ClusterLink,
}

impl Cluster {
    /// A mailer alone: the link never connects.
    pub fn off() -> Self {
        Self {
            link: ClusterLink(Arc::new(Shared::new(false))),
        }
    }

    /// Starts the link to `redis_url` in the background; the mailer starts whether or not
    /// Redis answers. Only a URL the client cannot read is an error (the configuration has
    /// checked its scheme already).
    pub fn start(redis_url: &str) -> Result<Self, String> {
        let info = redis_url
            .into_connection_info()
            .map_err(|e| format!("mailer.cluster.redis_url cannot be used: {e}"))?;
        // The adapter's subscriptions arrive as RESP3 pushes on the one connection.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| format!("mailer.cluster.redis_url cannot be used: {e}"))?;
        let shared = Arc::new(Shared::new(true));
        tokio::spawn(supervise(client, shared.clone()));
        Ok(Self {
            link: ClusterLink(shared),
        })
    }

    /// This mailer's name in the cluster, none when it is alone.
    pub fn node(&self) -> Option<String> {
        self.link.0.enabled.then(|| self.link.0.node.clone())
    }

    /// True when `mailer.cluster` is set: broadcasts go through Redis.
    pub fn is_on(&self) -> bool {
        self.link.0.enabled
    }

    /// What `/health` says.
    pub fn health(&self) -> ClusterHealth {
        match (
            self.link.0.enabled,
            self.link.0.connected.load(Ordering::Relaxed),
        ) {
            (false, _) => ClusterHealth::Off,
            (true, true) => ClusterHealth::Connected,
            (true, false) => ClusterHealth::Disconnected,
        }
    }

    /// The adapter's constructor state. Acks across mailers are not used by the mailer; the
    /// request timeout only bounds the adapter's own requests (room lists, fetches).
    pub fn adapter_state(&self) -> RedisAdapterCtr<ClusterLink> {
        let config = RedisAdapterConfig::new()
            .with_prefix("facteur")
            .with_request_timeout(Duration::from_secs(2))
            .with_stream_buffer(CHANNEL_BUFFER);
        RedisAdapterCtr::new_with_driver(self.link.clone(), config)
    }
}

impl ClusterLink {
    fn connection(&self) -> Option<MultiplexedConnection> {
        self.0.conn.read().ok().and_then(|c| c.clone())
    }

    /// Drops the connection after a failed command; the supervisor reconnects.
    fn broken(&self) {
        if let Ok(mut conn) = self.0.conn.write() {
            conn.take();
        }
        self.0.lost.notify_one();
    }
}

/// Runs one command on the live connection, if there is one, within [`COMMAND_TIMEOUT`].
/// None: no connection, or it broke (and is dropped).
async fn run<T: redis::FromRedisValue>(
    link: &ClusterLink,
    cmd: redis::Cmd,
) -> Option<redis::RedisResult<T>> {
    let mut conn = link.connection()?;
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
        Ok(Ok(value)) => Some(Ok(value)),
        Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
            link.broken();
            None
        }
        Ok(Err(e)) => Some(Err(e)),
        Err(_) => {
            link.broken();
            None
        }
    }
}

impl Driver for ClusterLink {
    type Error = LinkError;

    /// Publishes when connected. Without Redis the message is dropped and the call succeeds,
    /// so the adapter goes on with the local part of the broadcast: events are best effort
    /// across mailers, and the store holds the truth.
    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), LinkError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(chan).arg(val);
        match run::<redis::Value>(self, cmd).await {
            Some(Err(e)) => Err(LinkError(e.to_string())),
            _ => Ok(()),
        }
    }

    /// Registers the channel, then subscribes if connected; the supervisor subscribes again
    /// to every registered channel after each reconnection.
    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, LinkError> {
        let (tx, rx) = mpsc::channel(size.max(1));
        if let Ok(mut handlers) = self.0.handlers.write() {
            handlers.insert(chan.clone(), tx);
        }
        let mut cmd = redis::cmd("SUBSCRIBE");
        cmd.arg(&chan);
        if let Some(Err(e)) = run::<redis::Value>(self, cmd).await {
            tracing::warn!(channel = %chan, error = %e, "could not subscribe to a cluster channel; trying again at the next reconnection");
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), LinkError> {
        if let Ok(mut handlers) = self.0.handlers.write() {
            handlers.remove(&chan);
        }
        let mut cmd = redis::cmd("UNSUBSCRIBE");
        cmd.arg(chan);
        let _ = run::<redis::Value>(self, cmd).await;
        Ok(())
    }

    /// The mailers listening on `chan`; just this one while Redis is away, so nothing waits
    /// for answers that cannot come.
    async fn num_serv(&self, chan: &str) -> Result<u16, LinkError> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(chan);
        match run::<(String, u16)>(self, cmd).await {
            Some(Ok((_, count))) => Ok(count.max(1)),
            _ => Ok(1),
        }
    }
}

/// Hands a message from Redis to the adapter's stream of its channel.
fn deliver(shared: &Shared, push: PushInfo) -> bool {
    match push.kind {
        PushKind::Message => {
            let mut data = push.data.into_iter();
            let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
                return true;
            };
            let (Ok(chan), Ok(payload)) = (
                redis::from_redis_value::<String>(chan),
                redis::from_redis_value::<Vec<u8>>(payload),
            ) else {
                return true;
            };
            if let Ok(handlers) = shared.handlers.read()
                && let Some(tx) = handlers.get(&chan)
                && tx.try_send((chan, payload)).is_err()
            {
                // The adapter is behind by a whole buffer: this event is lost for this
                // mailer's clients, as a dropped `/live` event is.
                tracing::debug!("a cluster message was dropped: the adapter is behind");
            }
            true
        }
        PushKind::Disconnection => false,
        _ => true,
    }
}

/// Keeps the link up: connect, subscribe to every registered channel, watch, and start
/// again when the connection breaks.
async fn supervise(client: redis::Client, shared: Arc<Shared>) {
    let mut wait = RETRY_FIRST;
    let mut was_connected = false;
    let mut warned = false;
    loop {
        // Set false by this connection's own disconnection push: a push from an earlier
        // connection, or a wake-up left over from one, is not this connection's loss.
        let alive = Arc::new(AtomicBool::new(true));
        let (pushes, alive_in_pushes) = (shared.clone(), alive.clone());
        let link = ClusterLink(shared.clone());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_push_sender(move |push: PushInfo| {
                if !deliver(&pushes, push) {
                    alive_in_pushes.store(false, Ordering::Relaxed);
                    pushes.lost.notify_one();
                }
                Ok::<(), std::convert::Infallible>(())
            });
        match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(mut conn) => {
                let channels: Vec<String> = shared
                    .handlers
                    .read()
                    .map(|h| h.keys().cloned().collect())
                    .unwrap_or_default();
                let subscribed = if channels.is_empty() {
                    Ok(())
                } else {
                    match tokio::time::timeout(COMMAND_TIMEOUT, conn.subscribe(&channels)).await {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(_) => Err("Redis did not answer SUBSCRIBE in time".into()),
                    }
                };
                match subscribed {
                    Err(e) if !warned => {
                        tracing::warn!(error = %e, "the cluster's Redis took the connection but not the subscriptions; trying again");
                        warned = true;
                    }
                    Err(_) => {}
                    Ok(()) => {
                        if let Ok(mut slot) = shared.conn.write() {
                            *slot = Some(conn);
                        }
                        shared.connected.store(true, Ordering::Relaxed);
                        if was_connected || warned {
                            tracing::info!(
                                "the cluster's Redis is back: events cross mailers again"
                            );
                        } else {
                            tracing::info!("connected to the cluster's Redis");
                        }
                        was_connected = true;
                        wait = RETRY_FIRST;
                        watch(&link, &shared, &alive).await;
                        shared.connected.store(false, Ordering::Relaxed);
                        if let Ok(mut slot) = shared.conn.write() {
                            slot.take();
                        }
                        tracing::warn!(
                            "lost the cluster's Redis: events reach this mailer's own clients only until it is back"
                        );
                        warned = true;
                        continue;
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot reach the cluster's Redis: events reach this mailer's own clients only until it answers");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Returns when the connection is lost: its disconnection push, a command that found it
/// broken (and dropped it), or a PING left unanswered.
async fn watch(link: &ClusterLink, shared: &Shared, alive: &AtomicBool) {
    loop {
        tokio::select! {
            _ = shared.lost.notified() => {
                let dropped = shared.conn.read().map(|c| c.is_none()).unwrap_or(true);
                if dropped || !alive.load(Ordering::Relaxed) {
                    return;
                }
            }
            _ = tokio::time::sleep(PING_EVERY) => {
                match run::<String>(link, redis::cmd("PING")).await {
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        }
    }
}
