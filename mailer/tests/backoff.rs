//! Retry waits: exponential from the base, capped, with jitter between half and all of it.

use mailer::DeliveryOptions;
use std::time::Duration;

#[test]
fn retry_waits_double_from_the_base_stay_under_the_cap_and_are_jittered() {
    let options = DeliveryOptions {
        retry_base: Duration::from_millis(1000),
        retry_cap: Duration::from_millis(8000),
        ..DeliveryOptions::default()
    };
    for (attempts, full) in [
        (1, 1000),
        (2, 2000),
        (3, 4000),
        (4, 8000),
        (10, 8000),
        (40, 8000),
    ] {
        let waits: Vec<u128> = (0..200)
            .map(|_| options.retry_delay(attempts).as_millis())
            .collect();
        let (min, max) = (*waits.iter().min().unwrap(), *waits.iter().max().unwrap());
        assert!(
            min >= full / 2 && max <= full,
            "attempt {attempts}: {min}..{max} not within {}..{full}",
            full / 2
        );
        assert!(max > min, "attempt {attempts}: the waits are jittered");
    }
}
