//! The rate limits of the open routes (`users.limits`; CONTRACT.md, "Safe by default"):
//! GCRA limiters from governor, one per limit, keyed by login, email address or client.
//!
//! - `POST /authenticate`, and `PATCH /users/{id}`'s `current_password`: failures per login
//!   and per client. A failure of each is reserved before the password is checked
//!   ([`RateLimits::reserve_login_failure`]) and given back when it was right, so concurrent
//!   guesses cannot outrun the limit (see `refund_store`).
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
mod refund_store;

pub(crate) use client::ClientAddr;

use crate::error::ApiError;
use crate::metrics::{LimitLabels, Metrics};
use domain::config::UsersLimits;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};
use refund_store::RefundStore;
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

/// A limiter whose cells can be given back.
type Refundable<K> = RateLimiter<K, RefundStore<K>, DefaultClock>;

/// One limit: its name in `/metrics` and its limiter (`None` when off), with a handle on the
/// limiter's store and its emission interval to give cells back.
struct Limiter<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: Option<(Refundable<K>, RefundStore<K>, Nanos)>,
    spent: AtomicU32,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(name: &'static str, per_window: u32, window: Duration) -> Self {
        let limiter = NonZeroU32::new(per_window).and_then(|burst| {
            let interval = window / burst.get();
            let quota = Quota::with_period(interval)?.allow_burst(burst);
            let store = RefundStore::default();
            let limiter = RateLimiter::new(quota, store.clone(), DefaultClock::default());
            Some((limiter, store, Nanos::from(interval)))
        });
        Self {
            name,
            limiter,
            spent: AtomicU32::new(0),
        }
    }

    /// Spends one cell of `key`; `Err(wait)` when there is none left.
    fn take(&self, key: K) -> Result<(), Duration> {
        let Some((limiter, _, _)) = &self.limiter else {
            return Ok(());
        };
        if self.spent.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Gives back a cell of `key` that [`Limiter::take`] spent.
    fn give_back(&self, key: &K) {
        if let Some((_, store, interval)) = &self.limiter {
            store.give_back(key, *interval);
        }
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

    /// Before a password is checked: reserves one failure of `login` and one of `client`, or
    /// 429 when either has none left (then nothing stays reserved).
    pub fn reserve_login_failure(
        &self,
        login: &str,
        client: ClientAddr,
    ) -> Result<LoginAttempt<'_>, ApiError> {
        let client = client.key();
        let login = login_key(login);
        self.refuse(
            &self.failures_per_client,
            self.failures_per_client.take(client),
        )?;
        if let Err(wait) = self.failures_per_login.take(login.clone()) {
            self.failures_per_client.give_back(&client);
            self.refused(&self.failures_per_login);
            return Err(ApiError::TooManyRequests { retry_after: wait });
        }
        Ok(LoginAttempt {
            limits: self,
            login,
            client,
            decided: false,
        })
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

/// A login failure reserved before a password is checked. [`LoginAttempt::failed`] keeps
/// it; [`LoginAttempt::succeeded`] gives it back. Dropped undecided (the hash could not run,
/// or the client went away before the answer was known), it is given back too: such an
/// attempt told its sender nothing.
#[must_use = "an attempt is decided by `failed` or `succeeded`"]
pub(crate) struct LoginAttempt<'a> {
    limits: &'a RateLimits,
    login: String,
    client: IpAddr,
    decided: bool,
}

impl LoginAttempt<'_> {
    /// The password was wrong: the reserved failure counts.
    pub fn failed(mut self) {
        self.decided = true;
    }

    /// The password was right: the reserved failure is given back.
    pub fn succeeded(self) {
        // Drop gives it back.
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            self.limits.failures_per_client.give_back(&self.client);
            self.limits.failures_per_login.give_back(&self.login);
        }
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
    fn a_cell_given_back_can_be_taken_again_and_no_more() {
        let limiter = Limiter::<String>::new("test", 2, MINUTE);
        let key = "ada".to_owned();
        assert!(limiter.take(key.clone()).is_ok());
        assert!(limiter.take(key.clone()).is_ok());
        let wait = limiter.take(key.clone()).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        limiter.give_back(&key);
        assert!(limiter.take(key.clone()).is_ok());
        assert!(limiter.take(key.clone()).is_err());
        assert!(limiter.take("bob".to_owned()).is_ok());
    }

    #[test]
    fn a_right_password_gives_both_failures_back_and_a_wrong_one_keeps_them() {
        let limits = UsersLimits {
            login_failures_per_login: 2,
            login_failures_per_client: 3,
            ..UsersLimits::default()
        };
        let metrics = Arc::new(Metrics::new(domain::config::TransportKind::Socketio));
        let limits = RateLimits::new(&limits, metrics);
        let client = ClientAddr("192.0.2.1".parse().expect("an address"));
        for _ in 0..10 {
            limits
                .reserve_login_failure("ada", client)
                .expect("let through")
                .succeeded();
        }
        let first = limits.reserve_login_failure("ada", client).expect("first");
        let second = limits.reserve_login_failure("ada", client).expect("second");
        assert!(limits.reserve_login_failure("ada", client).is_err());
        first.failed();
        drop(second);
        limits
            .reserve_login_failure("ada", client)
            .expect("the undecided one was given back")
            .failed();
        assert!(limits.reserve_login_failure("ada", client).is_err());
        // The per-login refusal gave the client's cell back: one of three is left.
        limits
            .reserve_login_failure("bob", client)
            .expect("bob")
            .failed();
        assert!(limits.reserve_login_failure("carl", client).is_err());
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
