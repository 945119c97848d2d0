//! Sessions are records: listed, ended one by one or all at once, and refused at once by
//! every process once ended; none outlives the password it was opened under.

use crate::helpers::{ADMIN, Backend, spawn_app};
use crate::on_both_databases;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

on_both_databases!(
    changing_the_password_ends_the_sessions_issued_before,
    a_password_reset_ends_the_sessions_issued_before,
    a_token_with_a_guessed_secret_is_refused,
    a_users_sessions_are_listed_and_each_can_be_ended,
    a_session_ended_through_one_process_is_refused_by_another_at_once,
    an_expired_session_is_refused_unlisted_and_purged_by_the_next_login,
    a_session_records_its_last_use_at_most_once_a_minute,
);

async fn changing_the_password_ends_the_sessions_issued_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let before = app.session_for("ada").await;
    let other_before = app.session_for("ada").await;
    let unrelated = app
        .patch(&path, Some(&before), &json!({"first_name": "Augusta"}))
        .await;
    let still_valid = app.get(&path, Some(&before)).await;

    let changed = app
        .patch(
            &path,
            Some(&before),
            &json!({"password": "a-new-password", "current_password": "ada-secret-pw"}),
        )
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
    for token in [&before, &other_before] {
        app.get(&path, Some(token))
            .await
            .assert_error(401, "unauthorized");
    }
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

async fn a_token_with_a_guessed_secret_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let (genuine, _) = app.open_session("ada").await;
    // The guesser knows the session's id and the format; only the secret part is guessed.
    let (id_part, _) = genuine.split_once('.').expect("an id and a secret");
    let guessed = format!("{id_part}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]));

    let refused = app.get(&path, Some(&guessed)).await;
    let accepted = app.get(&path, Some(&genuine)).await;

    refused.assert_error(401, "unauthorized");
    accepted.assert_status(200);
}

async fn a_users_sessions_are_listed_and_each_can_be_ended(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    app.create_user("bob").await;
    let sessions = format!("{path}/sessions");
    let first = app
        .client
        .post(app.url("/authenticate"))
        .header("user-agent", "first-browser/1.0")
        .json(&json!({"login": "ada", "password": "ada-secret-pw"}))
        .send()
        .await
        .expect("sent")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let first_token = first["token"].as_str().expect("a token").to_owned();
    let first_id = first["session"]["id"].as_str().expect("an id").to_owned();
    let (second_token, second_id) = app.open_session("ada").await;
    let bob = app.session_for("bob").await;

    let listed = app.get(&sessions, Some(&second_token)).await;
    let by_admin = app.get(&sessions, Some(ADMIN)).await;
    let by_bob = app.get(&sessions, Some(&bob)).await;
    let ended = app
        .delete(&format!("{sessions}/{first_id}"), Some(&second_token))
        .await;
    let first_after = app.get(&path, Some(&first_token)).await;
    let ended_again = app
        .delete(&format!("{sessions}/{first_id}"), Some(&second_token))
        .await;
    let second_meanwhile = app.get(&path, Some(&second_token)).await;
    let logged_out = app.delete("/session", Some(&second_token)).await;
    let second_after = app.get(&path, Some(&second_token)).await;
    let left = app.get(&sessions, Some(ADMIN)).await;

    listed.assert_status(200);
    let items = listed.json["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{}", listed.text);
    let current: Vec<&str> = items
        .iter()
        .filter(|item| item["current"] == true)
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert_eq!(current, [second_id.as_str()]);
    let first_item = items
        .iter()
        .find(|item| item["id"] == first_id.as_str())
        .expect("the first session is listed");
    assert_eq!(first_item["user_agent"], "first-browser/1.0");
    assert_eq!(first_item["client"], "127.0.0.1");
    for field in ["created_at", "last_used_at", "expires_at"] {
        assert!(first_item[field].is_string(), "{field}: {first_item}");
    }
    by_admin.assert_status(200);
    assert_eq!(by_admin.json["items"].as_array().map(Vec::len), Some(2));
    assert!(
        by_admin.json["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|item| item["current"] == false)
    );
    by_bob.assert_error(403, "forbidden");
    ended.assert_status(204);
    first_after.assert_error(401, "unauthorized");
    ended_again.assert_error(404, "not_found");
    second_meanwhile.assert_status(200);
    logged_out.assert_status(204);
    second_after.assert_error(401, "unauthorized");
    left.assert_status(200);
    assert_eq!(left.json["items"], json!([]));
    app.delete("/session", Some(ADMIN))
        .await
        .assert_error(403, "forbidden");
    let unknown = format!("/users/{}/sessions", uuid::Uuid::now_v7());
    app.get(&unknown, Some(ADMIN))
        .await
        .assert_error(404, "not_found");
}

async fn a_session_ended_through_one_process_is_refused_by_another_at_once(backend: Backend) {
    let one = spawn_app(backend).await;
    let other = one.second_instance().await;
    let (_, path) = one.create_user_path("ada").await;
    let (logged_out, _) = one.open_session("ada").await;
    let (ended_by_id, ended_id) = other.open_session("ada").await;
    // Both processes accept both tokens first, so neither refusal below is a cold cache.
    for app in [&one, &other] {
        for token in [&logged_out, &ended_by_id] {
            app.get(&path, Some(token)).await.assert_status(200);
        }
    }

    one.delete("/session", Some(&logged_out))
        .await
        .assert_status(204);
    let refused_logged_out = other.get(&path, Some(&logged_out)).await;
    other
        .delete(&format!("{path}/sessions/{ended_id}"), Some(ADMIN))
        .await
        .assert_status(204);
    let refused_ended = one.get(&path, Some(&ended_by_id)).await;

    refused_logged_out.assert_error(401, "unauthorized");
    refused_ended.assert_error(401, "unauthorized");
}

/// A direct connection to the app's database, and a statement run on it.
async fn run_sql(database_url: &str, sql: &str) -> u64 {
    let db = Database::connect(database_url).await.expect("connect");
    let done = db
        .execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a statement");
    let _ = db.close().await;
    done.rows_affected()
}

async fn an_expired_session_is_refused_unlisted_and_purged_by_the_next_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let (expired, _) = app.open_session("ada").await;
    app.get(&path, Some(&expired)).await.assert_status(200);
    let past = chrono::Utc::now().timestamp_millis() - 1;
    assert_eq!(
        run_sql(
            &app.database_url,
            &format!("UPDATE sessions SET expires_at_ms = {past}"),
        )
        .await,
        1
    );

    let refused = app.get(&path, Some(&expired)).await;
    let listed = app.get(&format!("{path}/sessions"), Some(ADMIN)).await;
    let (fresh, _) = app.open_session("ada").await;
    // Only the fresh row is left to match: the expired one was deleted by the login.
    let left_expired = run_sql(
        &app.database_url,
        &format!("DELETE FROM sessions WHERE expires_at_ms <= {past}"),
    )
    .await;

    refused.assert_error(401, "unauthorized");
    listed.assert_status(200);
    assert_eq!(listed.json["items"], json!([]));
    assert_eq!(left_expired, 0);
    app.get(&path, Some(&fresh)).await.assert_status(200);
}

async fn a_session_records_its_last_use_at_most_once_a_minute(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    let (token, _) = app.open_session("ada").await;
    let sessions = format!("{path}/sessions");
    let last_used = || async {
        let listed = app.get(&sessions, Some(ADMIN)).await;
        listed.json["items"][0]["last_used_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .expect("a last_used_at")
    };
    let opened = last_used().await;
    // Used within the minute: nothing is written.
    app.get(&path, Some(&token)).await.assert_status(200);
    let within_the_minute = last_used().await;
    let two_minutes_ago = chrono::Utc::now().timestamp_millis() - 120_000;
    run_sql(
        &app.database_url,
        &format!("UPDATE sessions SET last_used_at_ms = {two_minutes_ago}"),
    )
    .await;

    app.get(&path, Some(&token)).await.assert_status(200);
    // The write runs after the answer: wait for it, with a deadline.
    let written = testkit::eventually(std::time::Duration::from_secs(10), || async {
        last_used().await.timestamp_millis() > two_minutes_ago + 60_000
    })
    .await;
    assert!(written, "the last use was not recorded");
    let recorded = last_used().await;

    assert_eq!(within_the_minute, opened);
    assert!(recorded >= opened, "{recorded} before {opened}");
}
