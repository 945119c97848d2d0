//! The page the reset mail links to, and what is left of the link once the mail is sent.

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_databases;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::json;

on_both_databases!(
    the_mailed_reset_link_serves_a_form_that_sets_the_password,
    once_the_reset_mail_is_published_no_table_holds_its_token,
);

async fn the_mailed_reset_link_serves_a_form_that_sets_the_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;
    let (path, _) = app.mailed_reset_link("ada@example.com", 2).await;

    let page = app.get(&path, None).await;
    let mismatch = app
        .post_form(&path, "password=brand-new-pw&confirm=brand-new-px")
        .await;
    let submitted = app
        .post_form(&path, "password=brand-new-pw&confirm=brand-new-pw")
        .await;
    let used = app.get(&path, None).await;

    page.assert_status(200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .expect("a type")
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    let html = page.text.to_lowercase();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("name=\"password\""), "{html}");
    // Self-contained: nothing is loaded from anywhere.
    for loads in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(loads), "{loads} in {html}");
    }
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .expect("a policy")
            .contains("default-src 'none'")
    );
    mismatch.assert_status(400);
    assert!(mismatch.text.contains("<form"), "{}", mismatch.text);
    submitted.assert_status(200);
    assert!(
        submitted.text.contains("Password changed"),
        "{}",
        submitted.text
    );
    used.assert_status(400);
    assert!(!used.text.contains("<form"), "{}", used.text);
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
}

/// Every value of every table of the app's database, as text.
async fn every_value(app: &TestApp) -> Vec<String> {
    let db = Database::connect(&app.database_url).await.expect("connect");
    let backend = db.get_database_backend();
    let tables_sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let tables = db
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .expect("the tables");
    let mut values = Vec::new();
    for table in tables {
        let name: String = table.try_get("", "name").expect("a name");
        // Each row as one JSON text, so every column of every type is searched.
        let sql = match backend {
            DbBackend::Postgres => format!("SELECT row_to_json(t)::text AS row FROM \"{name}\" t"),
            _ => {
                let columns = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name FROM pragma_table_info('{name}')"),
                    ))
                    .await
                    .expect("the columns");
                let pairs: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let column: String = c.try_get("", "name").expect("a column");
                        format!(
                            "'{column}', CASE typeof(\"{column}\") WHEN 'blob' \
                             THEN hex(\"{column}\") ELSE CAST(\"{column}\" AS TEXT) END"
                        )
                    })
                    .collect();
                format!(
                    "SELECT json_object({}) AS row FROM \"{name}\"",
                    pairs.join(", ")
                )
            }
        };
        for row in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("the rows")
        {
            values.push(format!(
                "{name}: {}",
                row.try_get::<String>("", "row").expect("a row")
            ));
        }
    }
    values
}

async fn once_the_reset_mail_is_published_no_table_holds_its_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;

    let (_, token) = app.mailed_reset_link("ada@example.com", 2).await;
    app.wait_until_outbox_empty().await;
    let values = every_value(&app).await;

    assert!(
        values.iter().any(|v| v.starts_with("password_resets:")),
        "the scan reads the reset rows: {values:?}"
    );
    let holding: Vec<&String> = values.iter().filter(|v| v.contains(&token)).collect();
    assert!(holding.is_empty(), "the token is still stored: {holding:?}");
}
