//! Schemathesis (PyPI, pinned in tests/schemathesis/requirements.txt) against each service's
//! own `/openapi.json`, with every check it has: the real `users` and `mailer` binaries on
//! SQLite, with the admin and service tokens. Any failure it reports fails the test, with its
//! report. The run is bounded: 30 examples per operation, and a deadline.

use crate::support::stack::{ADMIN_TOKEN, Kind, SERVICE_TOKEN, Stack};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::skip_or_fail;
use testkit::smtp::SmtpSink;

/// The longest one run may take, all phases included (`--max-time` would not bound it: it
/// makes schemathesis repeat its fuzzing until the time is spent).
const DEADLINE: Duration = Duration::from_secs(600);

/// The `st` program of the tests' virtual environment, or `None` (skipped, or failed under
/// `FACTEUR_REQUIRE_SERVICES=1`) when it is not installed.
fn schemathesis(test: &str) -> Option<PathBuf> {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/.venv/bin/st");
    let runs = Command::new(&st)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        skip_or_fail(
            test,
            "schemathesis is missing (python3 -m venv tests/schemathesis/.venv \
             && tests/schemathesis/.venv/bin/pip install -r tests/schemathesis/requirements.txt)",
        );
        return None;
    }
    Some(st)
}

/// Runs `st run` on `base`'s `/openapi.json` with `token`; panics with the report on any
/// failure.
async fn fuzz(st: PathBuf, base: String, token: &'static str) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/schemathesis.toml");
    let run = tokio::task::spawn_blocking(move || {
        let child = Command::new(&st)
            .args(["--config-file", &config.display().to_string()])
            .args(["run", &format!("{base}/openapi.json")])
            .args(["--checks", "all", "--max-examples", "30"])
            .args(["--request-timeout", "10", "--no-color"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("st starts");
        let pid = child.id();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if finished.recv_timeout(DEADLINE).is_err() {
                // Past the deadline: stop that one run, by its own id.
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        });
        let output = child.wait_with_output().expect("st ends");
        let _ = done.send(());
        output
    })
    .await
    .expect("the run");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "schemathesis reported failures ({}):\n{report}",
        run.status
    );
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_the_users_api() {
    let Some(st) = schemathesis("schemathesis_finds_no_failure_in_the_users_api") else {
        return;
    };
    let stack = Stack::start(Kind::Socketio, SmtpSink::start()).await;
    fuzz(st, stack.users_url(), ADMIN_TOKEN).await;
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_the_mailer_api() {
    let Some(st) = schemathesis("schemathesis_finds_no_failure_in_the_mailer_api") else {
        return;
    };
    let stack = Stack::start(Kind::Socketio, SmtpSink::start()).await;
    fuzz(st, stack.mailer_url(), SERVICE_TOKEN).await;
}
