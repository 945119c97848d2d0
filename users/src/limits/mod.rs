//! The rate limits of the open routes (`users.limits`; CONTRACT.md, "Safe by default"):
//! GCRA limiters from governor, one per limit, keyed by login, email address or client.
//!
//! - `POST /authenticate`: failures per login and per client. Both are checked without
//!   spending before the password is hashed ([`RateLimits::check_login`]), and a failure
//!   spends one cell of each ([`RateLimits::record_login_failure`]).
//! - `POST /password-resets`: requests per client (429), and reset mails per address (past
//!   that, the same 202 and no mail).
//! - `POST /email-verifications`: requests per client (429), and verification mails per
//!   address (past that, the same 202 and no mail).
//! - `POST /users`: requests per client.
//!
//! A limit of N per window lets N through at once, then one more every window ÷ N. A limit of
//! 0 is off. Every refusal is counted in `rate_limited_total{limit}`. Keys a limiter has not
//! seen for a whole window are dropped now and then, so memory follows recent traffic.

mod client;
mod probe_store;

pub(crate) use client::ClientAddr;

use crate::error::ApiError;
use crate::metrics::{LimitLabels, Metrics};
use domain::config::UsersLimits;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use probe_store::{Probe, ProbeStore};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
/// Every this many spent cells, a limiter drops the keys it no longer needs.
const PRUNE_EVERY: u32 = 4096;
/// Longest login kept as a key: no stored login is longer than 32 characters.
const MAX_LOGIN_KEY_BYTES: usize = 64;

/// One limit: its name in `/metrics` and its limiter (`None` when off).
struct Limiter<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: Option<RateLimiter<Probe<K>, ProbeStore<K>, DefaultClock>>,
    spent: AtomicU32,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(name: &'static str, per_window: u32, window: Duration) -> Self {
        let limiter = NonZeroU32::new(per_window)
            .and_then(|burst| {
                Quota::with_period(window / burst.get()).map(|q| q.allow_burst(burst))
            })
            .map(|quota| RateLimiter::new(quota, ProbeStore::default(), DefaultClock::default()));
        Self {
            name,
            limiter,
            spent: AtomicU32::new(0),
        }
    }

    /// `Err(wait)` when `key` would be refused now; spends nothing.
    fn peek(&self, key: &K) -> Result<(), Duration> {
        self.decide(Probe::Peek(key.clone()))
    }

    /// Spends one cell of `key`; `Err(wait)` when there is none left.
    fn take(&self, key: K) -> Result<(), Duration> {
        if let Some(limiter) = &self.limiter
            && self.spent.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.decide(Probe::Take(key))
    }

    fn decide(&self, probe: Probe<K>) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&probe)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// Every limit of the users service. Shared by all handlers.
pub(crate) struct RateLimits {
    failures_per_login: Limiter<String>,
    failures_per_client: Limiter<IpAddr>,
    reset_mails_per_address: Limiter<String>,
    resets_per_client: Limiter<IpAddr>,
    creates_per_client: Limiter<IpAddr>,
    verification_mails_per_address: Limiter<String>,
    verifications_per_client: Limiter<IpAddr>,
    metrics: Arc<Metrics>,
}

impl RateLimits {
    /// The limits of `users.limits`, counting refusals in `metrics`.
    pub fn new(limits: &UsersLimits, metrics: Arc<Metrics>) -> Self {
        let quarter_hour = 15 * MINUTE;
        Self {
            failures_per_login: Limiter::new(
                "login_failures_per_login",
                limits.login_failures_per_login,
                quarter_hour,
            ),
            failures_per_client: Limiter::new(
                "login_failures_per_client",
                limits.login_failures_per_client,
                quarter_hour,
            ),
            reset_mails_per_address: Limiter::new(
                "reset_mails_per_address",
                limits.reset_mails_per_address,
                60 * MINUTE,
            ),
            resets_per_client: Limiter::new("resets_per_client", limits.resets_per_client, MINUTE),
            creates_per_client: Limiter::new(
                "creates_per_client",
                limits.creates_per_client,
                MINUTE,
            ),
            verification_mails_per_address: Limiter::new(
                "verification_mails_per_address",
                limits.verification_mails_per_address,
                60 * MINUTE,
            ),
            verifications_per_client: Limiter::new(
                "verifications_per_client",
                limits.verifications_per_client,
                MINUTE,
            ),
            metrics,
        }
    }

    fn refused<K: Hash + Eq + Clone>(&self, limiter: &Limiter<K>) {
        self.metrics
            .rate_limited
            .get_or_create(&LimitLabels {
                limit: limiter.name,
            })
            .inc();
    }

    fn refuse<K: Hash + Eq + Clone>(
        &self,
        limiter: &Limiter<K>,
        decision: Result<(), Duration>,
    ) -> Result<(), ApiError> {
        decision.map_err(|retry_after| {
            self.refused(limiter);
            ApiError::TooManyRequests { retry_after }
        })
    }

    /// Before any hashing: 429 when `login` or `client` has used up its failures.
    pub fn check_login(&self, login: &str, client: ClientAddr) -> Result<(), ApiError> {
        let client = client.key();
        self.refuse(
            &self.failures_per_client,
            self.failures_per_client.peek(&client),
        )?;
        self.refuse(
            &self.failures_per_login,
            self.failures_per_login.peek(&login_key(login)),
        )
    }

    /// Counts a failed login against `login` and `client`.
    pub fn record_login_failure(&self, login: &str, client: ClientAddr) {
        // The attempt was let through by `check_login`; a refusal here only means that
        // concurrent failures used the last cells meanwhile, and the next check will see it.
        let _ = self.failures_per_client.take(client.key());
        let _ = self.failures_per_login.take(login_key(login));
    }

    /// 429 when `client` has used up `limiter`; else spends one of its cells.
    fn admit(&self, limiter: &Limiter<IpAddr>, client: ClientAddr) -> Result<(), ApiError> {
        self.refuse(limiter, limiter.take(client.key()))
    }

    /// False when the address of canonical key `email_key` (`domain::Email::canonical`) has
    /// had its mails of `limiter` for the window: then none is sent.
    fn allow_mail(&self, limiter: &Limiter<String>, email_key: &str) -> bool {
        let allowed = limiter.take(email_key.to_owned()).is_ok();
        if !allowed {
            self.refused(limiter);
        }
        allowed
    }

    /// 429 when `client` has sent too many `POST /password-resets`.
    pub fn admit_reset(&self, client: ClientAddr) -> Result<(), ApiError> {
        self.admit(&self.resets_per_client, client)
    }

    /// False when the address of canonical key `email_key` has had its reset mails for the
    /// hour: then none is sent.
    pub fn allow_reset_mail(&self, email_key: &str) -> bool {
        self.allow_mail(&self.reset_mails_per_address, email_key)
    }

    /// 429 when `client` has sent too many `POST /email-verifications`.
    pub fn admit_verification(&self, client: ClientAddr) -> Result<(), ApiError> {
        self.admit(&self.verifications_per_client, client)
    }

    /// False when the address of canonical key `email_key` has had its verification mails
    /// for the hour: then none is sent.
    pub fn allow_verification_mail(&self, email_key: &str) -> bool {
        self.allow_mail(&self.verification_mails_per_address, email_key)
    }

    /// 429 when `client` has sent too many `POST /users`.
    pub fn admit_create(&self, client: ClientAddr) -> Result<(), ApiError> {
        self.admit(&self.creates_per_client, client)
    }
}

/// `login` cut to a bounded length, so that a 64 KiB login is not a 64 KiB key.
fn login_key(login: &str) -> String {
    let mut end = login.len().min(MAX_LOGIN_KEY_BYTES);
    while !login.is_char_boundary(end) {
        end -= 1;
    }
    login[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peek_spends_nothing_and_a_take_spends_one() {
        let limiter = Limiter::<String>::new("test", 2, MINUTE);
        let key = "ada".to_owned();
        for _ in 0..5 {
            assert!(limiter.peek(&key).is_ok());
        }
        assert!(limiter.take(key.clone()).is_ok());
        assert!(limiter.take(key.clone()).is_ok());
        let wait = limiter.peek(&key).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limiter.take(key).is_err());
        assert!(limiter.peek(&"bob".to_owned()).is_ok());
    }

    #[test]
    fn a_limit_of_zero_is_off() {
        let limiter = Limiter::<String>::new("test", 0, MINUTE);
        for _ in 0..100 {
            assert!(limiter.take("ada".to_owned()).is_ok());
        }
    }

    #[test]
    fn long_logins_are_cut_on_a_character_boundary() {
        assert_eq!(login_key("ada"), "ada");
        let long = "é".repeat(100);
        assert_eq!(login_key(&long).len(), MAX_LOGIN_KEY_BYTES);
    }
}
