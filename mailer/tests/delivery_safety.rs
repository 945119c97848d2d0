//! Input that cannot jam a delivery, and the data a delivery leaves behind: a recipient
//! name with a line break is rejected at every door, a mail that cannot be built fails at
//! once (and is not sent again after a restart), a sent mail keeps no variables, and the
//! database and `.eml` files are readable by their owner only.

use crate::common::{mail_request, spawn_app};
use domain::{MailRequest, MailStatus, Recipient, Secret};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use transport::socketio::SocketIoPublisher;
use transport::{Receipt, Transport};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn database_path(app: &crate::common::TestApp) -> std::path::PathBuf {
    domain::config::sqlite_file(&app.config.mailer.database).expect("an SQLite file")
}

fn stored_vars(app: &crate::common::TestApp, id: &str) -> String {
    let db = rusqlite::Connection::open(database_path(app)).expect("the database opens");
    db.query_row(
        "SELECT vars FROM mail_deliveries WHERE id = ?1",
        [id],
        |row| row.get(0),
    )
    .expect("the row")
}

/// Writes a queued `welcome` delivery to ada straight into the stopped app's database, as
/// an older version (or a template change since) would have left it; returns its id.
fn store_welcome_row(app: &crate::common::TestApp, to_name: &str, vars: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let db = rusqlite::Connection::open(database_path(app)).expect("the database opens");
    let now = chrono::Utc::now().timestamp_millis();
    db.execute(
        "INSERT INTO mail_deliveries (id, template, locale, to_email, to_name, vars, status, \
         attempts, created_at, next_attempt_at) \
         VALUES (?1, 'welcome', 'en', 'ada@example.com', ?2, ?3, 'queued', 0, ?4, ?4)",
        rusqlite::params![id, to_name, vars, now],
    )
    .expect("the row is stored");
    id
}

#[tokio::test]
async fn a_recipient_name_with_a_line_break_is_rejected_by_rest_and_socket_io() {
    let app = spawn_app().await;
    let mut body = mail_request("welcome", "en");
    body["to"]["name"] = json!("Ada\u{2028}Lovelace");
    let publisher = SocketIoPublisher::start(&domain::config::SocketIoConfig {
        url: app.base.clone(),
        token: Secret::new(app.token.clone()),
    });
    assert!(publisher.wait_until_connected(Duration::from_secs(5)).await);
    let mut request = MailRequest::from_value(mail_request("welcome", "en")).unwrap();
    request.to = Recipient {
        email: request.to.email.clone(),
        name: "Ada\r\nBcc: eve@example.com".into(),
    };

    let (status, answer) = app.post_mail(&body).await;
    let receipt = publisher.publish(&request).await;
    publisher.close().await;

    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["status"], "rejected");
    assert!(
        answer["error"].as_str().unwrap().starts_with("to.name:"),
        "{answer}"
    );
    match receipt {
        Ok(Receipt::Answered(answer)) => match answer.status {
            MailStatus::Rejected { error } => assert!(error.starts_with("to.name:"), "{error}"),
            other => panic!("the socket.io door answered {other:?}"),
        },
        other => panic!("the socket.io door answered {other:?}"),
    }
    let (code, _) = app.get(&format!("/mails/{}", request.id)).await;
    assert_eq!(code, 404, "nothing was stored");
}

#[tokio::test]
async fn a_mail_that_cannot_be_rendered_fails_at_once_and_is_not_sent_again_after_a_restart() {
    // Arrange: a stored request whose variables no longer fit its template, as a row left by
    // another version would be. The mailer renders at send time, from the store.
    let mut app = spawn_app().await;
    app.stop().await;
    let id = store_welcome_row(&app, "Ada", r#"{"nickname": "ada"}"#);

    // Act
    let app = app.restart().await;
    let record = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    let first_run = app.metrics().await;
    let app = app.restart().await;
    let (_, after_restart) = app.get(&format!("/mails/{id}")).await;
    let second_run = app.metrics().await;

    // Assert
    assert_eq!(record["attempts"], 1, "{record}");
    let error = record["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("welcome template in en could not be rendered") && error.contains("login"),
        "the reason names the template and what is wrong: {error:?}"
    );
    assert_eq!(after_restart["status"], "failed");
    assert!(
        crate::common::outbox_files(&app).is_empty(),
        "nothing was sent"
    );
    for metrics in [&first_run, &second_run] {
        assert!(
            metrics.contains("smtp_possible_resends_total 0"),
            "{metrics}"
        );
    }
    assert_eq!(
        stored_vars(&app, &id),
        "{\"nickname\": \"ada\"}",
        "a failed delivery keeps its variables for a retry"
    );
}

#[tokio::test]
async fn a_stored_name_with_a_line_break_fails_its_delivery_instead_of_jamming_it() {
    // Arrange: a row stored before names were checked at the door, with a line break in the
    // recipient's name, which the message builder cannot write into `To:`.
    let mut app = spawn_app().await;
    app.stop().await;
    let id = store_welcome_row(&app, "Ada\r\nBcc: eve@example.com", r#"{"login": "ada"}"#);

    // Act
    let app = app.restart().await;
    let record = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    let app = app.restart().await;
    let (_, after_restart) = app.get(&format!("/mails/{id}")).await;
    let metrics = app.metrics().await;

    // Assert: failed with a reason, never left `sending`, nothing sent, no resend counted.
    assert!(
        record["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{record}"
    );
    assert_eq!(after_restart["status"], "failed", "{after_restart}");
    assert!(
        crate::common::outbox_files(&app).is_empty(),
        "nothing was sent"
    );
    assert!(
        metrics.contains("smtp_possible_resends_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_sent_mail_keeps_no_vars_and_its_files_are_readable_by_their_owner_only() {
    let app = spawn_app().await;
    let request = mail_request("password_reset", "en");
    let id = request["id"].as_str().unwrap().to_string();

    assert_eq!(app.post_mail(&request).await.0, 202);
    app.wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;

    assert_eq!(stored_vars(&app, &id), "{}", "the reset link is not kept");
    let (_, record) = app.get(&format!("/mails/{id}")).await;
    assert_eq!(record["status"], "sent");
    let eml = app.outbox().join(format!("{id}.eml"));
    assert_eq!(mode(&eml), 0o600, ".eml file");
    assert_eq!(mode(&app.outbox()), 0o700, "outbox_dir");
    assert_eq!(mode(&database_path(&app)), 0o600, "the database file");
}
