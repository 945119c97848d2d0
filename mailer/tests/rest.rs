//! `POST /mails`, `GET /mails/{id}`, `GET /mails`, `/health`, `/metrics`, `/openapi.json`, `/docs`.

use crate::common::{mail_request, outbox_files, spawn_app};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_request_is_accepted_once_then_answered_duplicate_and_written_as_one_eml_file() {
    let app = spawn_app().await;
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();

    let (first, answer) = app.post_mail(&request).await;
    let (second, again) = app.post_mail(&request).await;

    assert_eq!(first, 202);
    assert_eq!(answer, json!({"id": id, "status": "accepted"}));
    assert_eq!(second, 200);
    assert_eq!(again, json!({"id": id, "status": "duplicate"}));
    let record = app
        .wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["template"], "welcome");
    assert_eq!(record["to"]["email"], "ada@example.com");
    assert!(record["sent_at"].is_string());
    let files = outbox_files(&app);
    assert_eq!(files.len(), 1, "one mail for one id: {files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        eml.contains(&format!("Message-ID: <{id}@facteur.local>")),
        "{eml}"
    );
}

#[tokio::test]
async fn bad_requests_are_rejected_with_the_answer_shape_and_the_right_status() {
    let app = spawn_app().await;
    let url = format!("{}/mails", app.base);
    let mut unknown = mail_request("welcome", "en");
    unknown["template"] = json!("newsletter");

    let (status, body) = app.post_mail(&unknown).await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "rejected");
    assert!(
        body["error"].as_str().unwrap().contains("unknown template"),
        "{body}"
    );
    assert_eq!(body["id"], unknown["id"]);

    let huge = json!({"padding": "x".repeat(70 * 1024)});
    let (status, body) = app.post_mail(&huge).await;
    assert_eq!(status, 413);
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["id"], json!(null));

    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "rejected");

    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"));

    let mut no_vars = mail_request("password_reset", "fr");
    no_vars["vars"] = json!({});
    let (status, body) = app.post_mail(&no_vars).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("vars.reset_url"),
        "{body}"
    );
}

#[tokio::test]
async fn the_api_refuses_requests_without_the_bearer_token() {
    let app = spawn_app().await;
    for (method, path) in [
        ("POST", "/mails"),
        ("GET", "/mails"),
        ("GET", "/mails/0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10"),
        ("POST", "/mails/0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10/retry"),
        ("POST", "/mails/0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10/cancel"),
        ("POST", "/mails/retry"),
        ("GET", "/suppressions"),
        ("POST", "/suppressions"),
        ("DELETE", "/suppressions/ada@example.com"),
        ("GET", "/templates"),
        ("POST", "/templates/welcome/en/render"),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth("wrong")
            .json(&mail_request("welcome", "en"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(!body.to_string().contains(&app.token));
    }
    for path in [
        "/health",
        "/metrics",
        "/openapi.json",
        "/",
        "/live.js",
        "/live.css",
        "/templates/welcome/en",
    ] {
        let status = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{path} is open");
    }
}

#[tokio::test]
async fn listing_mails_pages_newest_first_and_filters_by_status() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let request = mail_request("account_deleted", "fr");
        ids.push(request["id"].as_str().unwrap().to_string());
        assert_eq!(app.post_mail(&request).await.0, 202);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for id in &ids {
        app.wait_for_status(id, "sent", Duration::from_secs(10))
            .await;
    }

    let (status, page) = app.get("/mails?per_page=2&page=1").await;
    let (_, page2) = app.get("/mails?per_page=2&page=2").await;
    let (_, sent) = app.get("/mails?status=sent&per_page=100").await;
    let (_, failed) = app.get("/mails?status=failed").await;
    let (bad, _) = app.get("/mails?status=lost").await;
    let (bad_page, _) = app.get("/mails?page=0").await;

    assert_eq!(status, 200);
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"][0]["id"], ids[4]);
    assert_eq!(page["items"][1]["id"], ids[3]);
    assert_eq!(page2["items"][0]["id"], ids[2]);
    assert_eq!(sent["items"].as_array().unwrap().len(), 5);
    assert_eq!(failed["total"], 0);
    assert_eq!(bad, 400);
    assert_eq!(bad_page, 400);
    let (missing, body) = app.get("/mails/0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10").await;
    assert_eq!(missing, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn health_metrics_openapi_and_docs_answer() {
    let app = spawn_app().await;
    let request = mail_request("welcome", "fr");
    app.post_mail(&request).await;
    app.wait_for_status(
        request["id"].as_str().unwrap(),
        "sent",
        Duration::from_secs(10),
    )
    .await;

    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        health,
        json!({"status": "ok", "database": "ok", "smtp": "files", "transport": "socketio"})
    );

    let metrics = app.metrics().await;
    for name in [
        "mail_requests_total{door=\"http\",status=\"accepted\"} 1",
        "deliveries_total{status=\"sent\",template=\"welcome\"} 1",
        "smtp_send_duration_seconds_count 1",
        "http_requests_total{route=\"/mails\",status=\"202\"} 1",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }

    let (status, api) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(api["paths"]["/mails"]["post"].is_object());
    assert!(api["paths"]["/mails/{id}"]["get"].is_object());
    assert!(api["paths"]["/templates"]["get"].is_object());
    assert!(api["paths"]["/templates/{name}/{locale}/render"]["post"].is_object());
    assert!(api["paths"]["/templates/{name}/{locale}"]["get"].is_object());

    let docs = app
        .http
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("src=\"http"),
        "the docs page loads nothing from the network"
    );
}

/// A sender whose address passes the configuration check but that lettre cannot put in a
/// `From` header stops the start, naming the key, instead of failing every mail later.
#[tokio::test]
async fn a_sender_lettre_cannot_use_stops_the_start_and_names_the_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = crate::common::test_config(&dir);
    config.mailer.from = "Facteur, Inc <no-reply@facteur.local>".into();
    config.validate().expect("the address part alone is valid");
    let error = match mailer::App::build(&config).await {
        Ok(_) => panic!("the mailer started with an unusable sender"),
        Err(e) => e.to_string(),
    };
    assert!(error.starts_with("mailer.from:"), "{error}");
}

/// `/openapi.json` documents each route of "Operating deliveries": its method, its error
/// answers, the bearer token, and the statuses a record can have.
#[tokio::test]
async fn openapi_documents_every_operator_route() {
    let app = crate::common::spawn_app().await;
    let (status, api) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    for (path, method, answers) in [
        (
            "/mails/{id}/retry",
            "post",
            &["200", "404", "409", "401"][..],
        ),
        ("/mails/retry", "post", &["200", "400", "401", "413", "415"]),
        ("/mails/{id}/cancel", "post", &["200", "404", "409", "401"]),
        ("/suppressions", "get", &["200", "400", "401"]),
        ("/suppressions", "post", &["201", "200", "400", "401"]),
        ("/suppressions/{email}", "delete", &["204", "404", "401"]),
    ] {
        let operation = &api["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        for answer in answers {
            assert!(
                operation["responses"][answer].is_object(),
                "{method} {path} documents {answer}: {operation}"
            );
        }
        assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
    }
    let record = &api["components"]["schemas"]["DeliveryRecord"]["properties"]["status"];
    assert_eq!(record["$ref"], "#/components/schemas/DeliveryStatus");
    let statuses = &api["components"]["schemas"]["DeliveryStatus"]["enum"];
    assert_eq!(*statuses, serde_json::json!(mailer::PUBLIC_STATUSES));
    assert!(api["components"]["schemas"]["SuppressionPage"].is_object());
}

/// Refusals that no handler writes — a query string that does not parse, a path that is not
/// UTF-8, a method or a route that does not exist, a body that is not JSON — have the
/// contract's error shape, and a 405 still says which methods the route takes.
#[tokio::test]
async fn bad_queries_paths_methods_and_content_types_get_the_error_shape() {
    let app = spawn_app().await;
    let send = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&app.token)
    };
    let cases = [
        (
            send(reqwest::Method::GET, "/mails?status=a&status=b"),
            400,
            "invalid_request",
        ),
        (
            send(reqwest::Method::GET, "/mails?page=x"),
            400,
            "invalid_page",
        ),
        (
            send(reqwest::Method::GET, "/mails?page="),
            400,
            "invalid_page",
        ),
        (
            send(reqwest::Method::GET, "/mails?status="),
            400,
            "invalid_status",
        ),
        (
            send(reqwest::Method::GET, "/mails/not-an-id"),
            400,
            "invalid_id",
        ),
        (
            send(reqwest::Method::DELETE, "/suppressions/%ff"),
            400,
            "invalid_request",
        ),
        (
            send(reqwest::Method::GET, "/templates/%ff/fr"),
            400,
            "invalid_request",
        ),
        (
            send(reqwest::Method::PUT, "/mails"),
            405,
            "method_not_allowed",
        ),
        (send(reqwest::Method::GET, "/nowhere"), 404, "not_found"),
        (
            send(reqwest::Method::POST, "/suppressions")
                .header("content-type", "text/plain")
                .body("ada@example.com"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.expect("the mailer answers");
        let url = response.url().to_string();
        assert_eq!(response.status().as_u16(), status, "{url}");
        if status == 405 {
            let allow = response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok());
            assert!(
                allow.is_some_and(|a| a.contains("GET") && a.contains("POST")),
                "{url}: Allow {allow:?}"
            );
        }
        let text = response.text().await.unwrap_or_default();
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text:?}"));
        assert_eq!(body["error"], code, "{url}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{url}: {body}"
        );
        assert!(body["details"].is_object(), "{url}: {body}");
    }
}

/// `/docs` and `/openapi.json` may not be framed by another page.
#[tokio::test]
async fn the_docs_may_not_be_framed() {
    let app = spawn_app().await;
    for path in ["/docs/", "/docs/swagger-initializer.js", "/openapi.json"] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy:?}"
        );
        assert!(policy.contains("script-src 'self'"), "{path}: {policy:?}");
    }
}

/// Swagger UI renders under the docs' policy: its own script and styles load, the document is
/// fetched, and the browser reports no policy violation.
#[tokio::test]
async fn the_docs_render_in_headless_chromium_within_their_policy() {
    let test = "the_docs_render_in_headless_chromium_within_their_policy";
    let logs = json!({"goog:loggingPrefs": {"browser": "ALL"}});
    let Some(browser) = crate::common::chromium::Browser::start(test, logs).await else {
        return;
    };
    let app = spawn_app().await;

    browser.goto(&format!("{}/docs/", app.base)).await;
    let text = browser
        .wait_for_text(30, |t| {
            t.contains("Facteur mailer") && t.contains("/suppressions")
        })
        .await;
    let log = browser.post("/se/log", json!({"type": "browser"})).await;
    browser.close().await;

    assert!(text.contains("Facteur mailer"), "the page rendered: {text}");
    assert!(
        text.contains("/suppressions"),
        "the operations are listed: {text}"
    );
    let violations: Vec<&serde_json::Value> = log
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Content Security Policy"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(violations.is_empty(), "policy violations: {violations:?}");
}
