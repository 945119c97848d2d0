//! A session token proves its holder knows the current password before it changes the
//! password or the email; the admin token needs no proof.

use crate::helpers::{ADMIN, Backend, TestResponse, spawn_app, spawn_app_configured};
use crate::on_both_databases;
use domain::config::UsersLimits;
use serde_json::json;

on_both_databases!(
    a_session_token_must_send_the_current_password_to_change_the_password_or_the_email,
    a_wrong_current_password_counts_as_a_login_failure,
);

#[track_caller]
fn assert_names_current_password(response: &TestResponse) {
    response.assert_error(400, "invalid_request");
    assert!(
        response.json["details"]["current_password"].is_string(),
        "{}",
        response.text
    );
}

async fn a_session_token_must_send_the_current_password_to_change_the_password_or_the_email(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let token = app.session_for("ada").await;

    let password_alone = app
        .patch(&path, Some(&token), &json!({"password": "a-new-password"}))
        .await;
    let email_alone = app
        .patch(
            &path,
            Some(&token),
            &json!({"email": "ada.new@example.com"}),
        )
        .await;
    let same_email = app
        .patch(
            &path,
            Some(&token),
            &json!({"email": "ada@example.com", "first_name": "Augusta"}),
        )
        .await;
    let wrong = app
        .patch(
            &path,
            Some(&token),
            &json!({"email": "ada.new@example.com", "current_password": "not-the-password"}),
        )
        .await;
    let email_proven = app
        .patch(
            &path,
            Some(&token),
            &json!({"email": "ada.new@example.com", "current_password": "ada-secret-pw"}),
        )
        .await;
    let password_proven = app
        .patch(
            &path,
            Some(&token),
            &json!({"password": "a-new-password", "current_password": "ada-secret-pw"}),
        )
        .await;
    let by_admin = app
        .patch(
            &path,
            Some(ADMIN),
            &json!({"password": "set-by-the-admin", "email": "ada@example.org"}),
        )
        .await;

    assert_names_current_password(&password_alone);
    assert_names_current_password(&email_alone);
    same_email.assert_status(200);
    wrong.assert_error(401, "invalid_credentials");
    assert!(!wrong.text.contains("not-the-password"), "{}", wrong.text);
    email_proven.assert_status(200);
    assert_eq!(email_proven.json["email"], "ada.new@example.com");
    password_proven.assert_status(200);
    by_admin.assert_status(200);
    assert_eq!(by_admin.json["email"], "ada@example.org");
    app.post(
        "/authenticate",
        &json!({"login": "ada", "password": "set-by-the-admin"}),
    )
    .await
    .assert_status(200);
}

async fn a_wrong_current_password_counts_as_a_login_failure(backend: Backend) {
    let app = spawn_app_configured(backend, |config| {
        config.users.limits = UsersLimits::default();
    })
    .await;
    let (_, path) = app.create_user_path("ada").await;
    let token = app.session_for("ada").await;
    let wrong_login = json!({"login": "ada", "password": "not-the-password"});

    app.patch(
        &path,
        Some(&token),
        &json!({"password": "a-new-password", "current_password": "not-the-password"}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    // With the default of 10 failures per login, the PATCH was the first: nine are left.
    for n in 2..=10 {
        let response = app.post("/authenticate", &wrong_login).await;
        assert_eq!(response.status, 401, "failure {n}: {}", response.text);
    }
    let eleventh = app.post("/authenticate", &wrong_login).await;
    let patch_while_blocked = app
        .patch(
            &path,
            Some(&token),
            &json!({"password": "a-new-password", "current_password": "ada-secret-pw"}),
        )
        .await;

    eleventh.assert_error(429, "too_many_requests");
    patch_while_blocked.assert_error(429, "too_many_requests");
}
