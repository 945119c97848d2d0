//! When a failed publish is tried again: exponential backoff with jitter, capped.
//!
//! The jitter spreads retries of many rows (and of several users instances) after an
//! outage, so they do not all hit the transport in the same instant when it comes back.

use std::time::Duration;

/// The first retry waits about this long.
const BASE: Duration = Duration::from_millis(250);
/// No retry waits longer than this.
pub(crate) const CAP: Duration = Duration::from_secs(30);

/// The delay before try number `attempts + 1`, after `attempts` failures (at least 1):
/// a random point in the upper half of `min(BASE × 2^(attempts-1), CAP)`.
pub(crate) fn delay_after(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    let ceiling = BASE.saturating_mul(1u32 << exponent).min(CAP);
    jittered(ceiling)
}

/// The longest delay, jittered: for errors that retrying soon will not fix.
pub(crate) fn longest() -> Duration {
    jittered(CAP)
}

fn jittered(ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    let extra_ms = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
    half + Duration::from_millis(extra_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stop_at_the_cap() {
        for attempts in 1..40 {
            let d = delay_after(attempts);
            let ceiling = BASE.saturating_mul(1u32 << (attempts - 1).min(16)).min(CAP);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempts}: {d:?}");
        }
        assert!(delay_after(1) <= BASE);
        assert!(delay_after(30) >= CAP / 2);
        assert!(longest() >= CAP / 2 && longest() <= CAP);
    }
}
