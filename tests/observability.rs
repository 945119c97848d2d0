//! What operators see: `/metrics` on both services shows every metric with values where
//! traffic passed, and JSON logs carry request ids and mail ids across both services, with
//! no secret in any line.

use crate::support::stack::{ADMIN_TOKEN, Kind, SERVICE_TOKEN, Stack, metric_sum};
use serde_json::Value;
use std::time::Duration;
use testkit::smtp::SmtpSink;

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
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::reserve());
    stack.set_env("FACTEUR_LOG__FORMAT", "json");
    stack.set_env("FACTEUR_LOG__LEVEL", "info");
    stack.start_users().await;
    stack.create_user("observed").await;
    let publish_failed = testkit::eventually(Duration::from_secs(30), || async {
        stack
            .metric(&stack.users_url(), "outbox_publish_failures_total")
            .await
            > 0.0
    })
    .await;
    assert!(publish_failed, "a publish fails while the mailer is down");
    stack.start_mailer().await;
    let send_failed = testkit::eventually(Duration::from_secs(30), || async {
        stack.metric(&stack.mailer_url(), "smtp_errors_total").await > 0.0
    })
    .await;
    assert!(send_failed, "a send fails while SMTP is down");
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

/// URLs that carry a password — both databases and the span endpoint — show up nowhere with
/// it: not in a log line (at debug), not in `/health`, not in `/metrics`.
#[tokio::test]
async fn passwords_in_configured_urls_reach_no_log_line_health_or_metrics() {
    let test = "passwords_in_configured_urls_reach_no_log_line_health_or_metrics";
    if !testkit::skip::available(testkit::skip::POSTGRES, test) {
        return;
    }
    const SECRET: &str = "Pw4UrlsOnly";
    let (users_db, mailer_db) = (
        crate::support::postgres::FreshDatabase::create("urlsecret_users"),
        crate::support::postgres::FreshDatabase::create("urlsecret_mailer"),
    );
    // The machine's PostgreSQL trusts local connections: the password is sent and ignored.
    let with_password = |url: String| url.replace("postgres@", &format!("postgres:{SECRET}@"));
    let closed = testkit::free_port();
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    stack.set_env("FACTEUR_USERS__DATABASE", &with_password(users_db.url()));
    stack.set_env("FACTEUR_MAILER__DATABASE", &with_password(mailer_db.url()));
    stack.set_env(
        "FACTEUR_TELEMETRY__OTLP_ENDPOINT",
        &format!("http://otel:{SECRET}@127.0.0.1:{closed}"),
    );
    stack.set_env("FACTEUR_LOG__LEVEL", "debug");
    stack.start_mailer().await;
    stack.start_users().await;
    stack.create_user("urlsecret").await;
    assert_eq!(
        stack.smtp.wait_for(1, Duration::from_secs(30)).await.len(),
        1
    );

    let mut answers = Vec::new();
    for base in [stack.users_url(), stack.mailer_url()] {
        for path in ["/health", "/metrics"] {
            let text = stack
                .http()
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("an answer")
                .text()
                .await
                .expect("a body");
            answers.push((format!("{base}{path}"), text));
        }
    }
    for name in ["users", "mailer"] {
        answers.push((format!("{name}.log"), stack.log(name)));
    }
    for (place, text) in answers {
        assert!(!text.is_empty(), "{place} is empty");
        assert!(
            !text.contains(SECRET),
            "{place} shows the password:\n{text}"
        );
    }
    assert!(
        stack.log("users").contains(&format!("127.0.0.1:{closed}")),
        "the endpoint is still named, without its user info:\n{}",
        stack.log("users")
    );
}
