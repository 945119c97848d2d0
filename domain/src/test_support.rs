//! For tests only: what a test does when something outside it (PostgreSQL, RabbitMQ, Node.js)
//! is missing. It skips with a visible `SKIPPED <test>: <why>` line, or fails when
//! `FACTEUR_REQUIRE_SERVICES=1`, so CI can never pass by skipping.
//!
//! Std only and always compiled: a cargo feature would build this crate twice, once for
//! `cargo build` and once for `cargo test`.

use std::io::Write as _;

/// The variable that turns every skip into a failure when it is `1`.
pub const REQUIRE_SERVICES_ENV: &str = "FACTEUR_REQUIRE_SERVICES";

/// True when `FACTEUR_REQUIRE_SERVICES=1`: a missing service fails the test instead of
/// skipping it.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
}

/// `test` cannot run because of `why` (`RabbitMQ is not reachable at 127.0.0.1:5672`): panics
/// when services are required, else writes `SKIPPED <test>: <why>` where it shows and returns
/// false, so a helper can end with `skip_or_fail(test, &why)` as its "not available" answer.
pub fn skip_or_fail(test: &str, why: &str) -> bool {
    if services_required() {
        panic!("{test}: {why}, and {REQUIRE_SERVICES_ENV}=1 forbids skipping");
    }
    report(&format!("SKIPPED {test}: {why}"));
    false
}

/// Writes one line to stderr past the test harness, which captures `println!` and `eprintln!`
/// of passing tests: skips and figures must show in every run.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
