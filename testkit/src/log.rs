//! `TEST_LOG=1` shows what the code under test logs: a tracing subscriber writing through
//! the test harness (so a passing test stays quiet unless run with `--nocapture`), filtered
//! by `RUST_LOG` (default `info`). Off by default, so test output stays readable.

use std::sync::Once;

/// The variable that turns the subscriber on when it is `1`.
pub const TEST_LOG_ENV: &str = "TEST_LOG";

/// Installs the subscriber once per test binary when `TEST_LOG=1`; does nothing otherwise.
/// Each crate's harness calls it where it starts the code under test.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var(TEST_LOG_ENV).is_ok_and(|v| v == "1") {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            // Another subscriber may already be global (a test that installs its own).
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}
