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
