//! What operators see: `/metrics` on both services shows every metric with values where
//! traffic passed, and JSON logs carry request ids and mail ids across both services, with
//! no secret in any line.

use crate::support::smtp::SmtpServer;
use crate::support::stack::{ADMIN_TOKEN, Kind, SERVICE_TOKEN, Stack, metric_sum};
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn sample_exists(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        !l.starts_with('#')
            && l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
    })
}

#[tokio::test]
async fn metrics_and_logs_show_what_happened() {
    // users first, the mailer and SMTP later: publishes and sends fail before they succeed.
    let mut stack = Stack::configure(Kind::Socketio, SmtpServer::reserve());
    stack.set_env("FACTEUR_LOG__FORMAT", "json");
    stack.set_env("FACTEUR_LOG__LEVEL", "info");
    stack.start_users().await;
    stack.create_user("observed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.start_mailer().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.smtp.listen();
    let mails = stack.smtp.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(mails.len(), 1, "the welcome mail arrives");
    let mail_id = mails[0]
        .message_id
        .split('@')
        .next()
        .expect("an id")
        .to_string();
    let listed = stack
        .http()
        .get(format!("{}/mails", stack.mailer_url()))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .expect("GET /mails");
    assert!(listed.status().is_success());

    let users_metrics = stack.metrics_text(&stack.users_url()).await;
    let mailer_metrics = stack.metrics_text(&stack.mailer_url()).await;
    for (service, text, nonzero, present) in [
        (
            "users",
            &users_metrics,
            &[
                "http_requests_total",
                "http_request_duration_seconds_count",
                "outbox_published_total",
                "outbox_publish_failures_total",
                "outbox_publish_duration_seconds_count",
            ][..],
            &["outbox_pending", "outbox_oldest_pending_seconds"][..],
        ),
        (
            "mailer",
            &mailer_metrics,
            &[
                "http_requests_total",
                "http_request_duration_seconds_count",
                "mail_requests_total",
                "deliveries_total",
                "smtp_send_duration_seconds_count",
                "smtp_errors_total",
                "socketio_connected_clients",
                "store_commits_total",
                "store_rows_written_total",
            ][..],
            &["smtp_possible_resends_total"][..],
        ),
    ] {
        for name in nonzero {
            assert!(
                metric_sum(text, name) > 0.0,
                "{service} /metrics: {name} should be non-zero:\n{text}"
            );
        }
        for name in present {
            assert!(
                sample_exists(text, name),
                "{service} /metrics: {name} is missing:\n{text}"
            );
        }
    }

    for service in ["users", "mailer"] {
        let log = stack.log(service);
        let lines: Vec<Value> = log
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|_| panic!("{service}: a line that is not JSON: {l}"))
            })
            .collect();
        assert!(!lines.is_empty(), "{service} logged something");
        for secret in [PASSWORD, ADMIN_TOKEN, SERVICE_TOKEN, "$argon2"] {
            assert!(!log.contains(secret), "{service} logged a secret");
        }
        assert!(
            lines.iter().any(|l| l
                .to_string()
                .contains(&format!("\"mail_id\":\"{mail_id}\""))),
            "{service}: a log line carries mail_id {mail_id}:\n{log}"
        );
    }
    let users_log = stack.log("users");
    assert!(
        users_log.contains("request_id"),
        "users log lines carry request ids:\n{users_log}"
    );
}
