//! Session tokens live only as long as the password they were issued under, and only this
//! service's secret signs them.

use crate::helpers::{Backend, spawn_app};
use crate::on_both_databases;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;
use sha2::Sha256;

on_both_databases!(
    changing_the_password_ends_the_sessions_issued_before,
    a_password_reset_ends_the_sessions_issued_before,
    a_token_forged_with_the_shipped_session_secret_is_refused,
);

async fn changing_the_password_ends_the_sessions_issued_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let before = app.session_for("ada").await;
    let unrelated = app
        .patch(&path, Some(&before), &json!({"first_name": "Augusta"}))
        .await;
    let still_valid = app.get(&path, Some(&before)).await;

    let changed = app
        .patch(&path, Some(&before), &json!({"password": "a-new-password"}))
        .await;
    let after = app
        .post(
            "/authenticate",
            &json!({"login": "ada", "password": "a-new-password"}),
        )
        .await;

    unrelated.assert_status(200);
    still_valid.assert_status(200);
    changed.assert_status(200);
    app.get(&path, Some(&before))
        .await
        .assert_error(401, "unauthorized");
    after.assert_status(200);
    let after = after.json["token"].as_str().expect("a token");
    app.get(&path, Some(after)).await.assert_status(200);
}

async fn a_password_reset_ends_the_sessions_issued_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let before = app.session_for("ada").await;
    let (_, token) = app.mailed_reset_link("ada@example.com", 2).await;

    app.post(
        &format!("/password-resets/{token}"),
        &json!({"password": "brand-new-pw"}),
    )
    .await
    .assert_status(204);

    app.get(&path, Some(&before))
        .await
        .assert_error(401, "unauthorized");
    let after = app
        .post(
            "/authenticate",
            &json!({"login": "ada", "password": "brand-new-pw"}),
        )
        .await;
    after.assert_status(200);
    let after = after.json["token"].as_str().expect("a token");
    app.get(&path, Some(after)).await.assert_status(200);
}

async fn a_token_forged_with_the_shipped_session_secret_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, path) = app.create_user_path("ada").await;
    // The forger knows everything but the secret: the user id, the format, even the hash.
    let db = Database::connect(&app.database_url).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT password_hash FROM users WHERE login = 'ada'",
        ))
        .await
        .expect("a query")
        .expect("a row");
    let hash: String = row.try_get("", "password_hash").expect("a hash");
    let payload = format!(
        "{}.{}",
        id.replace('-', ""),
        chrono::Utc::now().timestamp() + 600
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"change-me-three").expect("a key");
    mac.update(payload.as_bytes());
    mac.update(b"\0");
    mac.update(hash.as_bytes());
    let forged = format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );

    let refused = app.get(&path, Some(&forged)).await;
    let genuine = app.session_for("ada").await;

    refused.assert_error(401, "unauthorized");
    app.get(&path, Some(&genuine)).await.assert_status(200);
}
