//! Exponential backoff with jitter, for every retry loop of Facteur: the transport's reconnect
//! loops, the users outbox and the mailer's SMTP retries.
//!
//! The delay doubles from a base up to a cap, and each wait is a random point in the upper
//! half of the current delay (one jitter function for both), so many clients restarted
//! together do not retry in lockstep, and no wait is shorter than half the delay it stands for.

use std::time::Duration;

/// The wait before try number `attempts + 1` after `attempts` failures (at least 1): a random
/// point in the upper half of min(base × 2^(attempts−1), cap).
pub fn delay_after(base: Duration, cap: Duration, attempts: u32) -> Duration {
    jittered(ceiling(base, cap, attempts))
}

/// min(base × 2^(attempts−1), cap), without overflow for any `attempts`.
fn ceiling(base: Duration, cap: Duration, attempts: u32) -> Duration {
    // 2^31 already saturates any base of a nanosecond or more against a cap of a few years.
    let exponent = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << exponent).min(cap)
}

/// A random point in `[ceiling / 2, ceiling]`, the one jitter of every backoff.
fn jittered(ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::random_range(0..=spread))
}

/// The delays of one retry loop, for loops that count their own failures: doubles from `min`
/// up to `max` at each [`Backoff::next_delay`]; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    /// A backoff from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempts: 0,
        }
    }

    /// The transport's reconnect default: 100 ms doubling up to 5 s.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next wait ([`delay_after`] one more failure), and counts that failure.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts = self.attempts.saturating_add(1);
        delay_after(self.min, self.max, self.attempts)
    }

    /// Back to the shortest delay, once a try worked.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        let bounds = [100, 200, 400, 400, 400];
        for (delay, bound) in delays.iter().zip(bounds) {
            assert!(
                *delay <= Duration::from_millis(bound),
                "{delay:?} > {bound} ms"
            );
            assert!(
                *delay >= Duration::from_millis(bound / 2),
                "{delay:?} < {bound}/2 ms"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    /// The users outbox's setting: 250 ms doubling up to 30 s.
    #[test]
    fn delays_grow_then_stop_at_the_cap() {
        let (base, cap) = (Duration::from_millis(250), Duration::from_secs(30));
        for attempts in 1..40 {
            let d = delay_after(base, cap, attempts);
            let ceiling = base.saturating_mul(1u32 << (attempts - 1).min(16)).min(cap);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempts}: {d:?}");
        }
        assert!(delay_after(base, cap, 1) <= base);
        assert!(delay_after(base, cap, 30) >= cap / 2);
        let longest = jittered(cap);
        assert!(longest >= cap / 2 && longest <= cap);
    }

    #[test]
    fn no_attempt_count_overflows() {
        let cap = Duration::from_secs(30);
        for attempts in [0, 1, 32, 33, 64, u32::MAX] {
            let d = delay_after(Duration::from_secs(1), cap, attempts);
            assert!(d <= cap, "{attempts}: {d:?}");
        }
        assert!(delay_after(Duration::from_secs(1), cap, 0) <= Duration::from_secs(1));
        assert_eq!(delay_after(Duration::ZERO, cap, 5), Duration::ZERO);
    }
}
