//! Password resets: a single-use link by mail, and the same answer for unknown addresses.

use crate::helpers::{Backend, spawn_app};
use crate::on_both_databases;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_databases!(
    a_reset_link_sets_the_password_once,
    a_reset_for_an_unknown_address_answers_202_in_about_the_same_time_and_mails_nothing,
);

async fn a_reset_link_sets_the_password_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;

    app.post("/password-resets", &json!({"email": "ada@example.com"}))
        .await
        .assert_status(202);
    app.transport.wait_for(2).await;
    let resets = app.transport.with_template("password_reset");
    assert_eq!(resets.len(), 1);
    let url = resets[0].vars["reset_url"].as_str().expect("a reset_url");
    assert!(resets[0].vars["expires_at"].is_string());
    let token = url
        .strip_prefix("http://reset.test/password-resets/")
        .expect("the configured URL");
    assert!(token.len() >= 40, "{token}");

    let used = app
        .post(
            &format!("/password-resets/{token}"),
            &json!({"password": "brand-new-pw"}),
        )
        .await;
    let reused = app
        .post(
            &format!("/password-resets/{token}"),
            &json!({"password": "another-pw-1"}),
        )
        .await;
    let unknown = app
        .post(
            "/password-resets/unknown-token",
            &json!({"password": "another-pw-1"}),
        )
        .await;
    let weak = app
        .post(
            &format!("/password-resets/{token}"),
            &json!({"password": "short"}),
        )
        .await;

    used.assert_status(204);
    reused.assert_error(400, "invalid_token");
    unknown.assert_error(400, "invalid_token");
    weak.assert_error(400, "invalid_request");
    app.post(
        "/authenticate",
        &json!({"login": "ada", "password": "brand-new-pw"}),
    )
    .await
    .assert_status(200);
    app.post(
        "/authenticate",
        &json!({"login": "ada", "password": "ada-secret-pw"}),
    )
    .await
    .assert_status(401);
    let mails = app.transport.wait_for(3).await;
    let last = mails.last().expect("a mail");
    assert_eq!(last.template.as_str(), "password_changed");
    assert!(last.vars["changed_at"].is_string());
    app.post("/password-resets", &json!({"email": "not an address"}))
        .await
        .assert_error(400, "invalid_request");
}

async fn a_reset_for_an_unknown_address_answers_202_in_about_the_same_time_and_mails_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;
    app.transport.wait_for(1).await;

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        app.post("/password-resets", &json!({"email": "ada@example.com"}))
            .await
            .assert_status(202);
        known.push(started.elapsed());
        let started = Instant::now();
        let response = app
            .post("/password-resets", &json!({"email": "nobody@example.com"}))
            .await;
        unknown.push(started.elapsed());
        response.assert_status(202);
        assert!(response.text.is_empty() || response.json.is_object());
    }

    known.sort();
    unknown.sort();
    let gap = known[1].abs_diff(unknown[1]);
    assert!(
        gap < Duration::from_millis(50),
        "known {known:?} vs unknown {unknown:?}"
    );
    app.transport.wait_for(4).await;
    let resets = app.transport.with_template("password_reset");
    assert_eq!(resets.len(), 3);
    assert!(
        resets
            .iter()
            .all(|r| r.to.email.as_str() == "ada@example.com")
    );
}
