//! `/health`, `/metrics`, `/openapi.json`, `/docs` and request ids.

use crate::helpers::{ADMIN, Backend, spawn_app};
use crate::on_both_databases;

on_both_databases!(
    health_reports_the_database_the_transport_and_the_outbox_backlog,
    metrics_are_labelled_by_route_template,
    the_openapi_document_and_the_docs_page_are_served_without_network,
    every_answer_carries_a_request_id,
);

async fn health_reports_the_database_the_transport_and_the_outbox_backlog(backend: Backend) {
    let app = spawn_app(backend).await;

    let healthy = app.get("/health", None).await;
    app.transport.set_connected(false);
    app.transport.fail_next(usize::MAX);
    app.create_user("ada").await;
    app.create_user("bob").await;
    // The age of the oldest pending row is what is read: it must have grown past 0.2 s.
    testkit::eventually(std::time::Duration::from_secs(10), || async {
        app.get("/health", None).await.json["outbox"]["oldest_pending_seconds"]
            .as_f64()
            .is_some_and(|s| s >= 0.2)
    })
    .await;
    let backlogged = app.get("/health", None).await;

    healthy.assert_status(200);
    assert_eq!(healthy.json["status"], "ok");
    assert_eq!(healthy.json["database"], "ok");
    assert_eq!(healthy.json["transport"], "connected");
    assert_eq!(healthy.json["outbox"]["pending"], 0);
    // A disconnected transport does not make the service unready: the outbox holds the mails.
    backlogged.assert_status(200);
    assert_eq!(backlogged.json["transport"], "disconnected");
    assert_eq!(backlogged.json["outbox"]["pending"], 2);
    assert!(
        backlogged.json["outbox"]["oldest_pending_seconds"]
            .as_f64()
            .is_some_and(|s| s >= 0.2),
        "{}",
        backlogged.text
    );
}

async fn metrics_are_labelled_by_route_template(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    app.get(
        &format!("/users/{}", user["id"].as_str().expect("id")),
        Some(ADMIN),
    )
    .await
    .assert_status(200);
    app.wait_until_outbox_empty().await;
    // The relay counts a publish just after it marks the row published, so the outbox can
    // look empty a moment before the counter moves.
    let published = r#"outbox_published_total{transport="socketio"} 1"#;
    testkit::eventually(std::time::Duration::from_secs(10), || async {
        app.get("/metrics", None).await.text.contains(published)
    })
    .await;
    let metrics = app.get("/metrics", None).await;

    metrics.assert_status(200);
    let text = &metrics.text;
    assert!(
        text.contains(r#"http_requests_total{route="/users/{id}",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{route="/users",method="POST",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        !text.contains(user["id"].as_str().expect("id")),
        "a raw path leaked into a label"
    );
    // The outbox metrics carry the transport's kind (the test double's is socketio).
    assert!(
        text.contains(r#"outbox_published_total{transport="socketio"} 1"#),
        "{text}"
    );
    for name in [
        r#"outbox_publish_failures_total{transport="socketio"}"#,
        r#"outbox_pending{transport="socketio"} 0"#,
        r#"outbox_oldest_pending_seconds{transport="socketio"}"#,
        r#"outbox_publish_duration_seconds_count{transport="socketio"} 1"#,
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

async fn the_openapi_document_and_the_docs_page_are_served_without_network(backend: Backend) {
    let app = spawn_app(backend).await;

    let openapi = app.get("/openapi.json", None).await;
    let docs = app.get("/docs/", None).await;

    openapi.assert_status(200);
    for path in [
        "/users",
        "/users/{id}",
        "/authenticate",
        "/password-resets",
        "/password-resets/{token}",
        "/email-verifications",
        "/email-verifications/{token}",
        "/health",
    ] {
        assert!(
            openapi.json["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let verification = &openapi.json["paths"]["/email-verifications/{token}"];
    assert!(verification["get"].is_object() && verification["post"].is_object());
    let user = &openapi.json["components"]["schemas"]["UserResponse"]["properties"];
    assert!(
        user["email_verified"].is_object() && user["email_verified_at"].is_object(),
        "{user}"
    );
    docs.assert_status(200);
    assert!(docs.text.contains("swagger-ui"), "{}", docs.text);
    // Every asset is served by the service itself.
    for attribute in ["src=\"http", "href=\"http"] {
        assert!(
            !docs.text.contains(attribute),
            "the docs page loads {attribute}…: {}",
            docs.text
        );
    }
    let script = app.get("/docs/swagger-ui-bundle.js", None).await;
    script.assert_status(200);
    assert!(script.text.len() > 100_000);
    // No other page may frame the docs; their own scripts and styles still load.
    for answer in [&docs, &script, &openapi] {
        let policy = answer
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy:?}");
        assert!(policy.contains("script-src 'self'"), "{policy:?}");
    }
    // Query parameters are declared in the query, ids as UUIDs, addresses as addresses.
    let list = &openapi.json["paths"]["/users"]["get"]["parameters"];
    for parameter in list.as_array().expect("parameters") {
        assert_eq!(parameter["in"], "query", "{parameter}");
    }
    let id = &openapi.json["paths"]["/users/{id}"]["get"]["parameters"][0];
    assert_eq!(id["schema"]["format"], "uuid", "{id}");
    let create = &openapi.json["components"]["schemas"]["NewUserDoc"];
    assert_eq!(create["properties"]["email"]["format"], "email", "{create}");
    let metrics = &openapi.json["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        metrics.as_object().is_some_and(|c| c
            .keys()
            .all(|k| k.starts_with("application/openmetrics-text"))),
        "{metrics}"
    );
}

async fn every_answer_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;

    let generated = app.get("/health", None).await;
    let given = app
        .client
        .get(app.url("/users/not-a-uuid"))
        .header("x-request-id", "trace-me-42")
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");

    let id = generated.headers["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id}");
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    assert_eq!(given.status().as_u16(), 400);
}

/// PostgreSQL only: a database that disappears under a running app (SQLite keeps its open
/// file, so it has no such failure to provoke).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_503_when_the_database_is_gone() {
    let Some(backend) = Backend::postgres("health_answers_503_when_the_database_is_gone").await
    else {
        return;
    };
    let Backend::Postgres { admin_url } = backend.clone() else {
        return;
    };
    let app = spawn_app(backend).await;
    app.get("/health", None).await.assert_status(200);
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();

    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("connect");
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("DROP DATABASE {name} WITH (FORCE)"),
    )
    .await
    .expect("drop the database");
    admin.close().await.expect("close");
    let health = app.get("/health", None).await;

    health.assert_status(503);
    assert_eq!(health.json["status"], "unavailable");
    assert_eq!(health.json["database"], "unavailable");
    assert_eq!(health.json["transport"], "connected");
}
