//! Bad input of every kind gets a 4xx in the contract's shape, never a 500.

use crate::helpers::{ADMIN, Backend, ada, spawn_app};
use crate::on_both_databases;
use serde_json::json;

on_both_databases!(malformed_bodies_wrong_content_types_and_oversize_bodies_get_clear_4xx,);

async fn malformed_bodies_wrong_content_types_and_oversize_bodies_get_clear_4xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let huge = serde_json::to_vec(&json!({"login": "x".repeat(70 * 1024)})).expect("json");

    let malformed = app
        .send_raw("/users", "application/json", b"{\"login\": ".to_vec())
        .await;
    let not_an_object = app
        .send_raw("/users", "application/json", b"[1, 2]".to_vec())
        .await;
    let text = app
        .send_raw(
            "/users",
            "text/plain",
            serde_json::to_vec(&ada("bob")).expect("json"),
        )
        .await;
    let no_type = app
        .client
        .post(app.url("/authenticate"))
        .body("{}")
        .send()
        .await
        .expect("sent");
    // The server answers 413 without reading the rest and closes the connection; a client of
    // its own keeps that closing connection out of the shared pool.
    let oversize = reqwest::Client::new()
        .post(app.url("/users"))
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .expect("sent");
    let oversize = (
        oversize.status().as_u16(),
        oversize
            .json::<serde_json::Value>()
            .await
            .expect("a JSON body"),
    );
    let oversize_patch = reqwest::Client::new()
        .patch(app.url(&path))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    let wrong_types = app.post("/users", &json!({"login": 5, "email": [], "password": {}, "first_name": true, "last_name": null})).await;
    let no_route = app.get("/nowhere", None).await;
    let wrong_method = app
        .send(reqwest::Method::PUT, "/users", Some(ADMIN), None)
        .await;

    malformed.assert_error(400, "invalid_json");
    not_an_object.assert_error(400, "invalid_json");
    text.assert_error(415, "unsupported_media_type");
    assert_eq!(no_type.status().as_u16(), 415);
    assert_eq!(oversize.0, 413);
    assert_eq!(oversize.1["error"], "payload_too_large");
    assert_eq!(oversize_patch.status().as_u16(), 413);
    wrong_types.assert_error(400, "invalid_request");
    for field in ["login", "email", "password", "first_name", "last_name"] {
        assert!(
            wrong_types.json["details"][field].is_string(),
            "{field}: {}",
            wrong_types.text
        );
    }
    no_route.assert_error(404, "not_found");
    wrong_method.assert_error(405, "method_not_allowed");
    // Nothing above was saved or mailed.
    assert_eq!(app.get("/users", Some(ADMIN)).await.json["total"], 1);
    app.relay_until_idle().await;
    assert_eq!(app.transport.wait_for(1).await.len(), 1);
}

on_both_databases!(bad_queries_paths_and_methods_get_the_error_shape,);

/// A query string that does not parse, a path that is not an id (or not UTF-8), a method the
/// route does not take: each answer is the contract's JSON error, and a 405 still says which
/// methods the route takes.
async fn bad_queries_paths_and_methods_get_the_error_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |path: &'static str| app.send(reqwest::Method::GET, path, Some(ADMIN), None);

    let bad_page = get("/users?page=x").await;
    let twice = get("/users?page=1&page=2").await;
    let too_far = get("/users?page=1000001").await;
    let not_utf8 = app
        .send(reqwest::Method::DELETE, "/users/%ff", Some(ADMIN), None)
        .await;
    let not_an_id = get("/users/42").await;
    let put = app
        .send(
            reqwest::Method::PUT,
            "/users",
            Some(ADMIN),
            Some(&json!({})),
        )
        .await;
    let text = app
        .send_raw("/authenticate", "text/plain", b"{}".to_vec())
        .await;

    bad_page.assert_error(400, "invalid_request");
    twice.assert_error(400, "invalid_request");
    too_far.assert_error(400, "invalid_request");
    not_utf8.assert_error(400, "invalid_request");
    not_an_id.assert_error(400, "invalid_request");
    put.assert_error(405, "method_not_allowed");
    let allow = put
        .headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow:?}"
    );
    text.assert_error(415, "unsupported_media_type");
}
