//! A bad configuration stops each program at start with exit code 2 and one line that names
//! the key.

use std::process::Command;

fn program(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join(name)
}

fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(program(name))
        .args(args)
        .current_dir(dir.path())
        .env_remove("FACTEUR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Arguments, environment variables, and what the one error line must contain.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn each_program_names_the_bad_key_and_exits_2() {
    let broken = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(broken.path(), "transport: [unclosed\n").expect("write");
    let broken_path = broken.path().display().to_string();
    let cases: Vec<Case> = vec![
        (
            vec![],
            vec![("FACTEUR_TRANSPORT__SOCKETIO__URL", "ws://127.0.0.1:8080")],
            "transport.socketio.url",
        ),
        (
            vec![],
            vec![("FACTEUR_TRANSPORT__KIND", "pigeon")],
            "transport.kind",
        ),
        (
            vec![],
            vec![("FACTEUR_USERS__LISTEN", "nowhere")],
            "users.listen",
        ),
        (
            vec![],
            vec![("FACTEUR_MAILER__MAX_ATTEMPTS", "-3")],
            "mailer.max_attempts",
        ),
        (
            vec![],
            vec![("FACTEUR_MAILER__WORKER_THREADS", "0")],
            "mailer.worker_threads",
        ),
        (
            vec![],
            vec![("FACTEUR_MAILER__MAX_SOCKETS", "100")],
            "mailer.max_live_sockets",
        ),
        (
            vec!["--config", "/nonexistent/facteur.yaml"],
            vec![],
            "/nonexistent/facteur.yaml",
        ),
        (
            vec![],
            vec![("FACTEUR_CONFIG", "/nonexistent/env.yaml")],
            "FACTEUR_CONFIG",
        ),
        (vec!["--config", &broken_path], vec![], &broken_path),
    ];
    for name in ["users", "mailer", "facteur"] {
        for (args, env, expected) in &cases {
            let (code, stderr) = run(name, args, env);
            assert_eq!(
                code,
                Some(2),
                "{name} {args:?} {env:?}: exit code; stderr: {stderr}"
            );
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(
                lines.len(),
                1,
                "{name} {args:?} {env:?}: one line, got {stderr:?}"
            );
            assert!(
                lines[0].contains(expected),
                "{name}: {:?} should name {expected}",
                lines[0]
            );
        }
    }
}

/// The program, its environment, and the key its one error line must name.
type SecretCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// A secret of the right length that ships nowhere.
const OWN_SECRET: &str = "a-secret-of-this-deployment-0123456789";

#[test]
fn off_loopback_each_shipped_secret_stops_the_start_and_is_named() {
    let own = |key: &'static str| (key, OWN_SECRET);
    // Each case sets every secret before the one expected, so each key is reached in turn.
    let cases: Vec<SecretCase> = vec![
        (
            "users",
            vec![("FACTEUR_USERS__LISTEN", "0.0.0.0:0")],
            "users.admin_token",
        ),
        (
            "users",
            vec![
                ("FACTEUR_USERS__LISTEN", "0.0.0.0:0"),
                own("FACTEUR_USERS__ADMIN_TOKEN"),
            ],
            "users.session_secret",
        ),
        (
            "users",
            vec![
                ("FACTEUR_USERS__LISTEN", "0.0.0.0:0"),
                own("FACTEUR_USERS__ADMIN_TOKEN"),
                own("FACTEUR_USERS__SESSION_SECRET"),
            ],
            "transport.socketio.token",
        ),
        (
            "mailer",
            vec![("FACTEUR_MAILER__LISTEN", "0.0.0.0:0")],
            "transport.socketio.token",
        ),
        (
            "mailer",
            vec![
                ("FACTEUR_MAILER__LISTEN", "0.0.0.0:0"),
                own("FACTEUR_TRANSPORT__SOCKETIO__TOKEN"),
                ("FACTEUR_MAILER__LIVE_TOKEN", "change-me-live"),
            ],
            "mailer.live_token",
        ),
        (
            "mailer",
            vec![
                ("FACTEUR_MAILER__LISTEN", "0.0.0.0:0"),
                own("FACTEUR_TRANSPORT__SOCKETIO__TOKEN"),
            ],
            "mailer.suppression_key",
        ),
        (
            "mailer",
            vec![
                ("FACTEUR_MAILER__LISTEN", "[::]:0"),
                ("FACTEUR_TRANSPORT__SOCKETIO__TOKEN", "mine-but-too-short"),
            ],
            "transport.socketio.token",
        ),
        (
            "facteur",
            vec![("FACTEUR_MAILER__LISTEN", "0.0.0.0:0")],
            "transport.socketio.token",
        ),
    ];
    for (name, env, key) in cases {
        let (code, stderr) = run(name, &[], &env);
        assert_eq!(code, Some(2), "{name} {env:?}: exit code; stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name} {env:?}: one line, got {stderr:?}");
        assert!(
            lines[0].starts_with(&format!("invalid configuration: {key}: ")),
            "{name} {env:?}: {:?} should name {key}",
            lines[0]
        );
    }
}

#[test]
fn on_loopback_the_shipped_secrets_start_with_one_warning_line() {
    use std::io::{BufRead, BufReader};
    for (name, listening) in [("users", "users listening"), ("mailer", "mailer listening")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(program(name))
            .current_dir(dir.path())
            .env_remove("FACTEUR_CONFIG")
            .env("FACTEUR_USERS__LISTEN", "127.0.0.1:0")
            .env("FACTEUR_MAILER__LISTEN", "127.0.0.1:0")
            .env("FACTEUR_TRANSPORT__SOCKETIO__URL", "http://127.0.0.1:9")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.contains(listening)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            seen.iter().any(|l| l.contains(listening)),
            "{name} started on loopback: {seen:#?}"
        );
        let warnings: Vec<&String> = seen
            .iter()
            .filter(|l| l.contains("shipped or short"))
            .collect();
        assert_eq!(warnings.len(), 1, "{name}: one warning line, got {seen:#?}");
        assert!(warnings[0].contains("WARN"), "{:?}", warnings[0]);
        assert!(
            warnings[0].contains("transport.socketio.token"),
            "{:?}",
            warnings[0]
        );
        if name == "users" {
            assert!(
                warnings[0].contains("users.admin_token, users.session_secret"),
                "{:?}",
                warnings[0]
            );
        }
    }
}

#[test]
fn a_cluster_on_an_sqlite_mailer_database_stops_each_program_and_names_mailer_database() {
    // The machine's Redis, which may well answer: the refusal must come from the
    // configuration, before any connection.
    let redis_url = format!("redis://{}", testkit::skip::REDIS.1);
    let cases: [Vec<(&str, &str)>; 2] = [
        vec![("FACTEUR_MAILER__CLUSTER__REDIS_URL", &redis_url)],
        vec![
            ("FACTEUR_MAILER__DATABASE", "sqlite::memory:"),
            ("FACTEUR_MAILER__CLUSTER__REDIS_URL", &redis_url),
        ],
    ];
    for name in ["mailer", "facteur", "users"] {
        for env in &cases {
            let (code, stderr) = run(name, &[], env);
            assert_eq!(code, Some(2), "{name} {env:?}: exit code; stderr: {stderr}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{name} {env:?}: one line, got {stderr:?}");
            assert!(
                lines[0].starts_with("invalid configuration: mailer.database: "),
                "{name} {env:?}: {:?} should name mailer.database",
                lines[0]
            );
        }
    }
}

#[test]
fn a_mailer_with_a_rediss_cluster_url_starts() {
    use std::io::{BufRead, BufReader};
    let test = "a_mailer_with_a_rediss_cluster_url_starts";
    if !testkit::skip::available(testkit::skip::POSTGRES, test) {
        return;
    }
    let database = crate::support::postgres::FreshDatabase::create("rediss");
    let dir = tempfile::tempdir().expect("tempdir");
    // TLS to the machine's Redis, which speaks none: the mailer starts all the same and
    // keeps trying, as with any Redis that does not answer.
    let mut child = Command::new(program("mailer"))
        .current_dir(dir.path())
        .env_remove("FACTEUR_CONFIG")
        .env("FACTEUR_MAILER__LISTEN", "127.0.0.1:0")
        .env("FACTEUR_MAILER__DATABASE", database.url())
        .env(
            "FACTEUR_MAILER__CLUSTER__REDIS_URL",
            format!("rediss://{}", testkit::skip::REDIS.1),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the mailer runs");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("mailer listening")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("mailer listening")),
        "the mailer started with a rediss:// cluster: {seen:#?}"
    );
}

#[test]
fn a_dkim_key_that_cannot_be_read_stops_the_mailer_and_the_launcher_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem").display().to_string();
    let env = [
        ("FACTEUR_MAILER__DKIM__DOMAIN", "facteur.test"),
        ("FACTEUR_MAILER__DKIM__SELECTOR", "t2026"),
        ("FACTEUR_MAILER__DKIM__PRIVATE_KEY_FILE", missing.as_str()),
        ("FACTEUR_MAILER__LISTEN", "127.0.0.1:0"),
        ("FACTEUR_USERS__LISTEN", "127.0.0.1:0"),
        // Own secrets, so that no warning line about shipped ones comes first.
        ("FACTEUR_TRANSPORT__SOCKETIO__TOKEN", OWN_SECRET),
        ("FACTEUR_USERS__ADMIN_TOKEN", OWN_SECRET),
        ("FACTEUR_USERS__SESSION_SECRET", OWN_SECRET),
        ("FACTEUR_MAILER__SUPPRESSION_KEY", OWN_SECRET),
    ];
    for name in ["mailer", "facteur"] {
        let (code, stderr) = run(name, &[], &env);
        assert_eq!(code, Some(2), "{name}: exit code; stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: one line, got {stderr:?}");
        assert!(
            lines[0].starts_with("invalid configuration: mailer.dkim.private_key_file: "),
            "{name}: {:?}",
            lines[0]
        );
        assert!(lines[0].contains(&missing), "{name}: {:?}", lines[0]);
    }
}
