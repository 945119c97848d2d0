//! No password and no hash in any answer or log line.

use crate::helpers::{ADMIN, Backend, spawn_app};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects every formatted log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the subscriber set with `set_default` is per thread, and every
// task of the app then runs on this one.
#[tokio::test(flavor = "current_thread")]
async fn sqlite() {
    no_password_or_hash_in_any_answer_or_log_line(Backend::Sqlite).await
}

#[tokio::test(flavor = "current_thread")]
async fn postgres() {
    if let Some(backend) = Backend::postgres("no_password_or_hash_in_any_answer_or_log_line").await
    {
        no_password_or_hash_in_any_answer_or_log_line(backend).await
    }
}

async fn no_password_or_hash_in_any_answer_or_log_line(backend: Backend) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_app(backend).await;
    let secrets = [
        "first-Secret-pw",
        "second-Secret-pw",
        "third-Secret-pw",
        "fourth-Secret-pw",
    ];
    let mut bodies = Vec::new();

    let mut body = crate::helpers::ada("ada");
    body["password"] = json!(secrets[0]);
    let created = app.post("/users", &body).await;
    let path = format!("/users/{}", created.json["id"].as_str().expect("id"));
    bodies.push(created.text);
    bodies.push(
        app.post(
            "/authenticate",
            &json!({"login": "ada", "password": secrets[0]}),
        )
        .await
        .text,
    );
    bodies.push(
        app.post(
            "/authenticate",
            &json!({"login": "ada", "password": "wrong-Secret-pw"}),
        )
        .await
        .text,
    );
    bodies.push(
        app.patch(&path, Some(ADMIN), &json!({"password": secrets[1]}))
            .await
            .text,
    );
    bodies.push(
        app.patch(&path, Some(ADMIN), &json!({"password": "short"}))
            .await
            .text,
    );
    let session = app
        .post(
            "/authenticate",
            &json!({"login": "ada", "password": secrets[1]}),
        )
        .await;
    let token = session.json["token"].as_str().expect("a token").to_owned();
    bodies.push(session.text);
    for current in ["wrong-Secret-pw", secrets[1]] {
        bodies.push(
            app.patch(
                &path,
                Some(&token),
                &json!({"password": secrets[3], "current_password": current}),
            )
            .await
            .text,
        );
    }
    bodies.push(
        app.post("/users", &json!({"login": "x", "password": secrets[2]}))
            .await
            .text,
    );
    bodies.push(app.get(&path, Some(ADMIN)).await.text);
    bodies.push(app.get("/users", Some(ADMIN)).await.text);
    app.post("/password-resets", &json!({"email": "ada@example.com"}))
        .await
        .assert_status(202);
    let mails = app.transport.wait_for(4).await;
    let reset_token = mails
        .iter()
        .find_map(|m| m.vars.get("reset_url").and_then(|u| u.as_str()))
        .and_then(|u| u.rsplit('/').next())
        .expect("a reset token")
        .to_owned();
    bodies.push(
        app.post(
            &format!("/password-resets/{reset_token}"),
            &json!({"password": secrets[2]}),
        )
        .await
        .text,
    );
    app.transport.wait_for(5).await;
    drop(app);

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("user created"),
        "the capture saw no log line: {logs}"
    );
    let mails = serde_json::to_string(&mails).expect("json");
    for text in bodies.iter().chain([&logs, &mails]) {
        for secret in secrets.iter().chain(&["wrong-Secret-pw", "short\""]) {
            assert!(!text.contains(secret), "{secret} appears in: {text}");
        }
        assert!(
            !text.contains("$argon2"),
            "a password hash appears in: {text}"
        );
        assert!(!text.contains(ADMIN), "the admin token appears in: {text}");
    }
    // The reset token is only in the mail, never in a log line.
    assert!(!logs.contains(&reset_token), "the reset token is logged");
    // Nor is a session token.
    assert!(!logs.contains(&token), "a session token is logged");
}
