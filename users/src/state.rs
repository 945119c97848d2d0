//! The state every handler shares: one clone per request, all of it cheap to clone.

use crate::hashing::PasswordHasher;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::session::SessionKeys;
use crate::session_store::Touches;
use crate::user_reader::UserReader;
use domain::Secret;
use domain::config::PeerRange;
use sea_orm::DatabaseConnection;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::Notify;
use transport::Transport;

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub db: DatabaseConnection,
    /// Reads one user on the calling thread (SQLite files only): see `user_reader`.
    pub reader: Option<Arc<UserReader>>,
    pub transport: Arc<dyn Transport>,
    pub hasher: PasswordHasher,
    pub sessions: SessionKeys,
    /// Sessions whose last use is being recorded: see `session_store::touch`.
    pub session_touches: Arc<Touches>,
    pub admin_token: Secret,
    /// `users.reset_url`, with `{token}` to replace.
    pub reset_url: Arc<str>,
    /// `users.verify_url`, with `{token}` to replace.
    pub verify_url: Arc<str>,
    /// `users.verification_ttl_hours`: how long a verification link works.
    pub verification_ttl: chrono::Duration,
    /// `users.require_verified_email`: an unproved address cannot authenticate.
    pub require_verified_email: bool,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<RateLimits>,
    /// `users.trusted_proxies`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[IpAddr]>,
    /// `telemetry.trusted_trace_peers`: peers whose `traceparent` header is continued.
    pub trusted_trace_peers: Arc<[PeerRange]>,
    /// Wakes the outbox relay after a commit that wrote a mail request.
    pub outbox_wakeup: Arc<Notify>,
}
