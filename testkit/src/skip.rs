//! What a test does when something outside it (PostgreSQL, RabbitMQ, Redis, Node.js) is
//! missing: it skips with a visible `SKIPPED <test>: <why>` line, or fails when
//! `FACTEUR_REQUIRE_SERVICES=1`, so CI can never pass by skipping.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The variable that turns every skip into a failure when it is `1`.
pub const REQUIRE_SERVICES_ENV: &str = "FACTEUR_REQUIRE_SERVICES";

/// RabbitMQ on this machine: a name for messages and its address.
pub const RABBITMQ: (&str, &str) = ("RabbitMQ", "127.0.0.1:5672");
/// PostgreSQL on this machine.
pub const POSTGRES: (&str, &str) = ("PostgreSQL", "127.0.0.1:5432");
/// Redis on this machine.
pub const REDIS: (&str, &str) = ("Redis", "127.0.0.1:6379");

/// True when `FACTEUR_REQUIRE_SERVICES=1`: a missing service fails the test instead of
/// skipping it.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
}

/// `test` cannot run because of `why` (`RabbitMQ is not reachable at 127.0.0.1:5672`): panics
/// when services are required, else writes `SKIPPED <test>: <why>` where it shows and returns
/// false, so a check can end with `skip_or_fail(test, &why)` as its "not available" answer.
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

/// True when `service` ([`RABBITMQ`], [`POSTGRES`], [`REDIS`]) accepts a TCP connection
/// within 2 s; otherwise the rule of [`skip_or_fail`] for `test`.
pub fn available(service: (&str, &str), test: &str) -> bool {
    let (name, addr) = service;
    let addr: SocketAddr = addr.parse().expect("a literal address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        || skip_or_fail(test, &format!("{name} is not reachable at {addr}"))
}

/// True when `program --version` runs; otherwise the rule of [`skip_or_fail`], with `hint`
/// saying how to install it.
pub fn program_available(program: &str, hint: &str, test: &str) -> bool {
    let runs = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    runs || skip_or_fail(test, &format!("{program} is missing ({hint})"))
}
