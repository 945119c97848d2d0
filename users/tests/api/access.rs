//! Who may do what: the admin token, session tokens, and no token at all.

use crate::helpers::{ADMIN, Backend, spawn_app};
use crate::on_both_databases;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_databases!(
    every_protected_route_answers_401_without_a_token_or_with_a_bad_one,
    a_session_token_acts_on_its_own_user_only,
    authenticate_answers_an_unknown_login_and_a_wrong_password_alike,
);

async fn every_protected_route_answers_401_without_a_token_or_with_a_bad_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let session = app.session_for("ada").await;
    // A token of the right form signed with another secret, and a truncated one.
    let mut forged = session.clone();
    forged.pop();
    forged.push(if session.ends_with('A') { 'B' } else { 'A' });
    let body = json!({"first_name": "X"});

    for (method, route) in [
        (Method::GET, "/users"),
        (Method::GET, path.as_str()),
        (Method::PATCH, path.as_str()),
        (Method::DELETE, path.as_str()),
    ] {
        for token in [
            None,
            Some("not-a-token"),
            Some(forged.as_str()),
            Some("change-me-too"),
        ] {
            let response = app.send(method.clone(), route, token, Some(&body)).await;
            response.assert_error(401, "unauthorized");
        }
        // A scheme other than Bearer is no token either.
        let basic = app
            .client
            .request(method.clone(), app.url(route))
            .header("authorization", format!("Basic {ADMIN}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(basic.status().as_u16(), 401);
    }
    app.get(&path, Some(ADMIN)).await.assert_status(200);
}

async fn a_session_token_acts_on_its_own_user_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.create_user("ada").await;
    let bob = app.create_user("bob").await;
    let ada_path = format!("/users/{}", ada["id"].as_str().expect("id"));
    let bob_path = format!("/users/{}", bob["id"].as_str().expect("id"));
    let token = app.session_for("ada").await;

    app.get(&bob_path, Some(&token))
        .await
        .assert_error(403, "forbidden");
    app.patch(&bob_path, Some(&token), &json!({"first_name": "X"}))
        .await
        .assert_error(403, "forbidden");
    app.delete(&bob_path, Some(&token))
        .await
        .assert_error(403, "forbidden");
    app.get("/users", Some(&token))
        .await
        .assert_error(403, "forbidden");

    app.get(&ada_path, Some(&token)).await.assert_status(200);
    let changed = app
        .patch(&ada_path, Some(&token), &json!({"first_name": "Augusta"}))
        .await;
    changed.assert_status(200);
    assert_eq!(changed.json["first_name"], "Augusta");
    app.get(&bob_path, Some(ADMIN)).await.assert_status(200);
    assert_eq!(
        app.get(&bob_path, Some(ADMIN)).await.json["first_name"],
        "Ada"
    );
    app.delete(&ada_path, Some(&token)).await.assert_status(204);
    // The token of a deleted user is no longer valid: there is no password hash to check it
    // against.
    app.get(&ada_path, Some(&token))
        .await
        .assert_error(401, "unauthorized");
}

async fn authenticate_answers_an_unknown_login_and_a_wrong_password_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;
    let wrong_password = json!({"login": "ada", "password": "not-the-password"});
    let unknown_login = json!({"login": "nobody", "password": "not-the-password"});

    let mut wrong_times = Vec::new();
    let mut unknown_times = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let wrong = app.post("/authenticate", &wrong_password).await;
        wrong_times.push(started.elapsed());
        let started = Instant::now();
        let unknown = app.post("/authenticate", &unknown_login).await;
        unknown_times.push(started.elapsed());
        wrong.assert_error(401, "invalid_credentials");
        unknown.assert_error(401, "invalid_credentials");
        bodies.push((wrong.json, unknown.json));
    }

    for (wrong, unknown) in &bodies {
        assert_eq!(wrong, unknown, "the two failures must be indistinguishable");
    }
    wrong_times.sort();
    unknown_times.sort();
    let (a, b) = (wrong_times[2], unknown_times[2]);
    let gap = a.abs_diff(b);
    // Both cost one Argon2id verification; the medians must be close.
    assert!(
        gap < a.max(b) / 3 + Duration::from_millis(15),
        "wrong password {a:?} vs unknown login {b:?}"
    );
    let ok = app
        .post(
            "/authenticate",
            &json!({"login": "ada", "password": "ada-secret-pw"}),
        )
        .await;
    ok.assert_status(200);
    assert!(ok.json["token"].is_string());
    assert!(ok.json["session"]["id"].is_string());
    assert!(ok.json["session"]["expires_at"].is_string());
    assert_eq!(ok.json["expires_at"], ok.json["session"]["expires_at"]);
    assert_eq!(ok.json["user"]["login"], "ada");
    app.post("/authenticate", &json!({"login": "ada"}))
        .await
        .assert_error(400, "invalid_request");
}
