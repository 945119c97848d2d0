use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Checks `condition` every 20 ms until it holds (true) or `within` has passed (false, after
/// one last check): a test waits for something it can observe rather than for a fixed time.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
