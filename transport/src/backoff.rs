//! Exponential backoff with jitter, shared by every reconnect loop of the crate.
//!
//! The delay doubles from `min` up to `max`; each wait is a random fraction (50–100 %) of the
//! current delay, so many clients restarted together do not reconnect in lockstep.

use std::time::Duration;

/// The delays of one reconnect loop; [`Backoff::reset`] after a successful connect.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff from `min` doubling up to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            current: min,
        }
    }

    /// The default of the crate: 100 ms doubling up to 5 s.
    pub(crate) fn reconnect() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next wait, and doubles the delay for the time after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        base.mul_f64(rand::random_range(0.5..=1.0))
    }

    /// Back to the shortest delay, once a connection worked.
    pub(crate) fn reset(&mut self) {
        self.current = self.min;
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
}
