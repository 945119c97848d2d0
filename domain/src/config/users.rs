//! `users.*`: the users service.

use super::scalar::string_or_scalar;
use crate::Secret;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// `users.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// `users.listen`: the address and port of the REST API (default `127.0.0.1:3000`; port 0
    /// picks a free one).
    pub listen: SocketAddr,
    /// `users.database`: `sqlite://…` or `postgres://…` (default
    /// `sqlite://var/users.db?mode=rwc`, a file under `./var/`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub database: String,
    /// `users.admin_token`: the bearer token with every right on the users API (default
    /// `change-me-too`, accepted on loopback only).
    pub admin_token: Secret,
    /// `users.session_secret`: the key that signs the session tokens `POST /authenticate`
    /// hands out (default `change-me-three`, accepted on loopback only).
    pub session_secret: Secret,
    /// `users.reset_url`: the link put in password-reset mails, `http://` or `https://`, in
    /// which `{token}` is replaced by the reset token (default
    /// `http://127.0.0.1:3000/password-resets/{token}`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub reset_url: String,
    /// `users.verify_url`: the link put in welcome and email-verification mails, `http://` or
    /// `https://`, in which `{token}` is replaced by the verification token (default
    /// `http://127.0.0.1:3000/email-verifications/{token}`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub verify_url: String,
    /// `users.verification_ttl_hours`: how long a verification link works, from 1 to 8784
    /// (a year; default 48).
    pub verification_ttl_hours: u32,
    /// `users.require_verified_email`: when true, an account whose address is not proved
    /// cannot authenticate (403 `email_not_verified`; default false).
    pub require_verified_email: bool,
    /// `users.max_pending_hashes`: password hashes that may wait for a hashing thread, at
    /// least 1 (default 64); one more is answered 503 `unavailable` at once.
    pub max_pending_hashes: usize,
    /// `users.max_connections`: HTTP connections served at once, at least 1 (default 1024);
    /// more wait in the accept backlog.
    pub max_connections: usize,
    /// `users.trusted_proxies`: peer addresses whose `X-Forwarded-For` header names the client
    /// for the rate limits, and which `max_connections_per_client` does not cap (default
    /// none: the peer is the client).
    pub trusted_proxies: Vec<IpAddr>,
    /// `users.max_connections_per_client`: HTTP connections one client address may hold at
    /// once (default 64; 0: no cap); more are closed at accept.
    pub max_connections_per_client: usize,
    /// `users.limits.*`: the rate limits of the open routes.
    pub limits: UsersLimits,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database: "sqlite://var/users.db?mode=rwc".into(),
            admin_token: Secret::new("change-me-too"),
            session_secret: Secret::new("change-me-three"),
            reset_url: "http://127.0.0.1:3000/password-resets/{token}".into(),
            verify_url: "http://127.0.0.1:3000/email-verifications/{token}".into(),
            verification_ttl_hours: 48,
            require_verified_email: false,
            max_pending_hashes: 64,
            max_connections: 1024,
            trusted_proxies: Vec::new(),
            max_connections_per_client: 64,
            limits: UsersLimits::default(),
        }
    }
}

/// `users.limits.*`: how many of each thing one key may do per window; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersLimits {
    /// `users.limits.login_failures_per_login`: failed `POST /authenticate` per login per
    /// 15 minutes (default 10); then 429.
    pub login_failures_per_login: u32,
    /// `users.limits.login_failures_per_client`: failed `POST /authenticate` per client
    /// address per 15 minutes (default 30); then 429.
    pub login_failures_per_client: u32,
    /// `users.limits.reset_mails_per_address`: reset mails per email address per hour
    /// (default 3); past that the answer stays 202 and no mail is sent.
    pub reset_mails_per_address: u32,
    /// `users.limits.resets_per_client`: `POST /password-resets` per client address per
    /// minute (default 20); then 429.
    pub resets_per_client: u32,
    /// `users.limits.creates_per_client`: `POST /users` per client address per minute
    /// (default 20); then 429.
    pub creates_per_client: u32,
    /// `users.limits.verification_mails_per_address`: verification mails sent on request
    /// (`POST /email-verifications`) per email address per hour (default 3); past that the
    /// answer stays 202 and no mail is sent.
    pub verification_mails_per_address: u32,
    /// `users.limits.verifications_per_client`: `POST /email-verifications` per client
    /// address per minute (default 20); then 429.
    pub verifications_per_client: u32,
}

impl Default for UsersLimits {
    fn default() -> Self {
        Self {
            login_failures_per_login: 10,
            login_failures_per_client: 30,
            reset_mails_per_address: 3,
            resets_per_client: 20,
            creates_per_client: 20,
            verification_mails_per_address: 3,
            verifications_per_client: 20,
        }
    }
}
