//! The README's commands work as written: `cargo run`'s launcher starts both services on the
//! embedded defaults (ports 3000 and 8080), and every `curl` and `ls` of the tour succeeds
//! against it, on socket.io and then on RabbitMQ.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::skip::{RABBITMQ, available};

const README: &str = include_str!("../README.md");

/// The tour's shell lines: the `curl` and `ls` commands inside ```sh blocks.
fn tour_commands() -> Vec<&'static str> {
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in README.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && (l.starts_with("curl ") || l.starts_with("ls ")) => commands.push(l),
            _ => {}
        }
    }
    commands
}

fn start_launcher(dir: &Path, env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(dir.join("facteur.log")).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_facteur"))
        .current_dir(dir)
        .env_remove("FACTEUR_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the facteur launcher starts")
}

async fn wait_healthy(dir: &Path, launcher: &mut Child) -> Duration {
    let started = Instant::now();
    let log = || std::fs::read_to_string(dir.join("facteur.log")).unwrap_or_default();
    for url in [
        "http://127.0.0.1:3000/health",
        "http://127.0.0.1:8080/health",
    ] {
        let healthy = testkit::eventually(Duration::from_secs(30), || {
            if let Ok(Some(status)) = launcher.try_wait() {
                panic!("the launcher exited with {status}:\n{}", log());
            }
            let ok = Command::new("curl")
                .args(["-fs", "-o", "/dev/null", url])
                .status()
                .is_ok_and(|s| s.success());
            std::future::ready(ok)
        })
        .await;
        assert!(healthy, "{url} not healthy within 30 s:\n{}", log());
    }
    started.elapsed()
}

async fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let exited = testkit::eventually(Duration::from_secs(20), || {
        std::future::ready(matches!(child.try_wait(), Ok(Some(_))))
    })
    .await;
    if !exited {
        let _ = child.kill();
        panic!("the launcher did not stop within 20 s of SIGTERM");
    }
    let status = child.wait().expect("the launcher's status");
    assert!(
        status.success(),
        "the launcher exits 0 on SIGTERM, got {status}"
    );
}

async fn run_tour(dir: &Path) {
    let commands = tour_commands();
    assert!(commands.len() >= 8, "the README has a tour: {commands:?}");
    for command in commands {
        let run = || {
            let out = Command::new("bash")
                .arg("-c")
                .arg(command)
                .current_dir(dir)
                .output()
                .expect("bash");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            // `ls var/mail` right after the create: the mail takes a moment to be written.
            let done =
                out.status.success() && (!command.starts_with("ls") || stdout.contains(".eml"));
            (done, stdout, stderr)
        };
        testkit::eventually(Duration::from_secs(10), || std::future::ready(run().0)).await;
        let (done, stdout, stderr) = run();
        assert!(done, "README command failed: {command}\n{stdout}{stderr}");
        assert!(
            !stdout.contains("correct horse battery"),
            "{command} printed a password"
        );
        assert!(!stdout.contains("$argon2"), "{command} printed a hash");
    }
}

#[tokio::test]
async fn the_readme_commands_work_on_both_transports() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"),
        dir.path().join("config.yaml"),
    )
    .expect("copy config.yaml");

    let help = Command::new(env!("CARGO_BIN_EXE_facteur"))
        .arg("--help")
        .output()
        .expect("--help");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("FACTEUR_TRANSPORT__KIND=amqp"));

    let mut launcher = start_launcher(dir.path(), &[]);
    let ready = wait_healthy(dir.path(), &mut launcher).await;
    testkit::report(&format!(
        "cargo run: both /health endpoints answered within {} ms",
        ready.as_millis()
    ));
    run_tour(dir.path()).await;
    assert!(dir.path().join("var/users.db").exists() && dir.path().join("var/mailer.db").exists());
    stop(launcher).await;

    if available(
        RABBITMQ,
        "the_readme_commands_work_on_both_transports (amqp)",
    ) {
        let _broker = crate::faults::broker_shared().await;
        let amqp_dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(
            dir.path().join("config.yaml"),
            amqp_dir.path().join("config.yaml"),
        )
        .expect("copy");
        let mut launcher = start_launcher(amqp_dir.path(), &[("FACTEUR_TRANSPORT__KIND", "amqp")]);
        wait_healthy(amqp_dir.path(), &mut launcher).await;
        run_tour(amqp_dir.path()).await;
        stop(launcher).await;
    }
}
