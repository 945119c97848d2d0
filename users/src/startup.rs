//! [`App`]: `build` connects, migrates and binds; `run_until_stopped` serves and relays.

use crate::database::connect_and_migrate;
use crate::hashing::PasswordHasher;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::outbox::relay::OutboxRelay;
use crate::routes::router;
use crate::session::SessionKeys;
use crate::state::AppState;
use crate::user_reader::UserReader;
use axum::Router;
use domain::config::Config;
use runtime::http_server::ServeLimits;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use transport::Transport;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("the users database could not be opened or migrated: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address from `users.listen`.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The password hasher could not be prepared.
    #[error("the password hasher could not start: {0}")]
    Hasher(#[source] anyhow::Error),
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP server failed.
    #[error("the users HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The relay task panicked.
    #[error("the outbox relay stopped abnormally: {0}")]
    Relay(#[from] tokio::task::JoinError),
}

/// The users service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
    relay: OutboxRelay,
    limits: ServeLimits,
}

impl App {
    /// Connects to `config.users.database`, runs the migrations, binds `config.users.listen`
    /// and prepares the outbox relay, which publishes through `transport`.
    pub async fn build(
        config: &Config,
        transport: Arc<dyn Transport>,
    ) -> Result<App, StartupError> {
        let users = &config.users;
        let db = connect_and_migrate(&users.database).await?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let metrics = Arc::new(Metrics::new(transport.kind()));
        let hasher = PasswordHasher::new(cores, users.max_pending_hashes, metrics.hashes.clone())
            .await
            .map_err(StartupError::Hasher)?;
        let outbox_wakeup = Arc::new(Notify::new());
        let relay = OutboxRelay::new(
            db.clone(),
            transport.clone(),
            metrics.clone(),
            outbox_wakeup.clone(),
        );
        let state = AppState {
            db,
            reader: UserReader::for_database(&users.database).map(Arc::new),
            transport,
            hasher,
            sessions: SessionKeys::new(&users.session_secret),
            session_touches: Arc::default(),
            admin_token: users.admin_token.clone(),
            reset_url: users.reset_url.as_str().into(),
            verify_url: users.verify_url.as_str().into(),
            verification_ttl: chrono::Duration::hours(i64::from(users.verification_ttl_hours)),
            require_verified_email: users.require_verified_email,
            limits: Arc::new(RateLimits::new(&users.limits, metrics.clone())),
            trusted_proxies: users.trusted_proxies.clone().into(),
            trusted_trace_peers: config.telemetry.trusted_trace_peers.clone().into(),
            metrics,
            outbox_wakeup,
        };
        let listener =
            TcpListener::bind(users.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: users.listen,
                    source,
                })?;
        Ok(App {
            listener,
            router: router(state),
            relay,
            limits: ServeLimits::with_max_connections(users.max_connections)
                .per_client(users.max_connections_per_client, &users.trusted_proxies),
        })
    }

    /// The address the service listens on (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Closes keep-alive connections idle for `timeout` instead of the contract's 60 s
    /// (tests, which cannot wait that long).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// A handle on the outbox relay, to run passes or read the backlog directly (tests).
    pub fn relay_handle(&self) -> OutboxRelay {
        self.relay.clone()
    }

    /// Serves HTTP and runs the relay until `shutdown` completes; then stops accepting,
    /// finishes requests in flight, and lets the relay finish its pass. Rows the transport
    /// has not confirmed stay pending.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let (stop_relay, relay_stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(relay_stopped));
        let served =
            runtime::http_server::serve(self.listener, self.router, self.limits, shutdown).await;
        let _ = stop_relay.send(true);
        relay.await?;
        served?;
        Ok(())
    }
}
