//! Input that cannot jam a mail, page numbers that cannot overflow, bounded metrics labels
//! and private database files.

use crate::helpers::{ADMIN, Backend, ada, spawn_app, spawn_app_configured};
use crate::on_both_databases;
use serde_json::{Value, json};

on_both_databases!(
    names_company_and_functions_with_line_breaks_are_refused_naming_the_field,
    absurd_page_numbers_are_a_400,
    made_up_methods_add_no_metrics_series,
);

async fn names_company_and_functions_with_line_breaks_are_refused_naming_the_field(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let cases: [(&str, Value); 6] = [
        ("first_name", json!("Ada\r\nBcc: eve@example.com")),
        ("last_name", json!("Love\nlace")),
        ("company", json!("Analytical Engines\r")),
        ("functions", json!(["mathematician", "poet\r\nX-Spam: yes"])),
        ("first_name", json!("Ada\u{2028}Byron")),
        ("last_name", json!("Lovelace\n")),
    ];

    for (n, (field, value)) in cases.iter().enumerate() {
        let mut body = ada(&format!("bob{n}"));
        body[*field] = value.clone();
        let created = app.post("/users", &body).await;
        let mut change = serde_json::Map::new();
        change.insert((*field).to_owned(), value.clone());
        let changed = app.patch(&path, Some(ADMIN), &Value::Object(change)).await;

        for answer in [&created, &changed] {
            answer.assert_error(400, "invalid_request");
            let details = answer.json["details"].as_object().expect("details");
            assert_eq!(details.len(), 1, "{field}: {}", answer.text);
            assert!(details.contains_key(*field), "{field}: {}", answer.text);
        }
    }
    // Accents and ordinary spaces are fine.
    let mut fine = ada("zoe");
    fine["first_name"] = json!("Zoé Ørsted");
    fine["functions"] = json!(["chef de projet"]);
    app.post("/users", &fine).await.assert_status(201);
}

async fn absurd_page_numbers_are_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;

    for query in [
        "page=18446744073709551615",
        "page=18446744073709551616",
        "page=922337203685477581&per_page=100",
        "per_page=18446744073709551615",
        "page=1&per_page=101",
        "page=-1",
    ] {
        let answer = app.get(&format!("/users?{query}"), Some(ADMIN)).await;
        answer.assert_error(400, "invalid_request");
    }
    let page = app.get("/users?page=2&per_page=100", Some(ADMIN)).await;
    page.assert_status(200);
    assert_eq!(page.json["items"], json!([]));
}

/// The `http_requests_total` series in a `/metrics` text.
fn request_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

async fn made_up_methods_add_no_metrics_series(backend: Backend) {
    let app = spawn_app(backend).await;
    let paths = ["/users", "/health", "/no-such-route"];
    let send = |method: String, path: &'static str| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method token");
        app.client.request(method, app.url(path)).send()
    };
    for path in paths {
        send("WARMUP".into(), path).await.expect("sent");
    }
    // Read twice, so that `/metrics` has its own series in the snapshot.
    app.metrics().await;
    let before = request_series(&app.metrics().await);

    for n in 0..50 {
        send(format!("MADEUP{n}"), paths[n % paths.len()])
            .await
            .expect("sent");
    }
    let after = request_series(&app.metrics().await);

    assert_eq!(before, after);
    assert!(
        after.iter().any(|s| s.contains("method=\"other\"")),
        "{after:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_database_and_its_new_folder_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("data");
    let url = format!("sqlite://{}/users.db?mode=rwc", folder.display());
    let app = spawn_app_configured(Backend::Sqlite, |config| {
        config.users.database = url.clone();
    })
    .await;
    app.create_user("ada").await;

    let mode = |name: &str| {
        std::fs::metadata(folder.join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(
        std::fs::metadata(&folder)
            .expect("the folder")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(mode("users.db"), 0o600);
    assert_eq!(mode("users.db-wal"), 0o600);
    assert_eq!(mode("users.db-shm"), 0o600);
}
