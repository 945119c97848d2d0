//! The delivery log line: each outcome writes one INFO line an operator can grep, with the
//! request's trace id, read here from the real binary's JSON log output.

use crate::common::{MailerProcess, mail_request};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::smtp::{Reply, SmtpSink};

/// The `delivery` lines of `log` for `id` (JSON lines, fields at the top level).
fn delivery_lines(log: &str, id: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "delivery" && line["mail_id"] == id)
        .collect()
}

async fn post(mailer: &MailerProcess, body: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/mails", mailer.base))
        .bearer_auth(&mailer.token)
        .json(body)
        .send()
        .await
        .expect("POST /mails");
    assert_eq!(response.status(), 202);
    response.json().await.expect("an answer")
}

async fn wait_status(mailer: &MailerProcess, id: &str, status: &str) {
    let http = reqwest::Client::new();
    let reached = testkit::eventually(Duration::from_secs(20), || async {
        let Ok(response) = http
            .get(format!("{}/mails/{id}", mailer.base))
            .bearer_auth(&mailer.token)
            .send()
            .await
        else {
            return false;
        };
        response
            .json::<Value>()
            .await
            .is_ok_and(|record| record["status"] == status)
    })
    .await;
    assert!(reached, "{id} did not become {status}:\n{}", mailer.log());
}

#[tokio::test]
async fn sent_failed_and_suppressed_mails_each_write_one_info_line_with_the_trace_id() {
    let smtp = SmtpSink::start();
    let port = smtp.port().to_string();
    let mailer = MailerProcess::start(&[
        ("FACTEUR_LOG__FORMAT", "json"),
        ("FACTEUR_LOG__LEVEL", "info"),
        ("FACTEUR_MAILER__SMTP__HOST", "127.0.0.1"),
        ("FACTEUR_MAILER__SMTP__PORT", &port),
        ("FACTEUR_MAILER__SMTP__TLS", "none"),
    ])
    .await;

    // One trace per request, as the users service would send it.
    let traced = |to: &str| {
        let mut request = mail_request("welcome", "en");
        request["to"] = json!({"email": to, "name": "Ada"});
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        request["traceparent"] = json!(format!("00-{trace_id}-0123456789abcdef-01"));
        (request, trace_id)
    };
    let (sent, sent_trace) = traced("ada@Example.COM");
    let sent_id = sent["id"].as_str().unwrap().to_string();
    post(&mailer, &sent).await;
    wait_status(&mailer, &sent_id, "sent").await;

    smtp.fail_next(1, Reply::NoMailbox);
    let (failed, failed_trace) = traced("gone@example.org");
    let failed_id = failed["id"].as_str().unwrap().to_string();
    post(&mailer, &failed).await;
    wait_status(&mailer, &failed_id, "failed").await;

    let (suppressed, suppressed_trace) = traced("gone@example.org");
    let suppressed_id = suppressed["id"].as_str().unwrap().to_string();
    post(&mailer, &suppressed).await;
    wait_status(&mailer, &suppressed_id, "suppressed").await;

    for (id, status, trace, domain, attempt, code) in [
        (&sent_id, "sent", &sent_trace, "example.com", 1, Some(250)),
        (
            &failed_id,
            "failed",
            &failed_trace,
            "example.org",
            1,
            Some(550),
        ),
        (
            &suppressed_id,
            "suppressed",
            &suppressed_trace,
            "example.org",
            0,
            None,
        ),
    ] {
        // Written before the status is stored; the log writer may still hold it a moment.
        testkit::eventually(Duration::from_secs(5), || async {
            !delivery_lines(&mailer.log(), id).is_empty()
        })
        .await;
        let log = mailer.log();
        let lines = delivery_lines(&log, id);
        assert_eq!(
            lines.len(),
            1,
            "{status}: one delivery line for {id} in\n{log}"
        );
        let line = &lines[0];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["template"], "welcome", "{line}");
        assert_eq!(line["recipient_domain"], domain, "{line}");
        assert_eq!(line["attempt"], attempt, "{line}");
        assert_eq!(line["trace_id"], trace.as_str(), "{line}");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        match code {
            Some(code) => {
                assert_eq!(line["smtp_code"], code, "{line}");
                assert!(
                    !line["smtp_reply"].as_str().unwrap_or_default().is_empty(),
                    "the server's reply text: {line}"
                );
            }
            None => assert!(line["smtp_code"].is_null(), "{line}"),
        }
        // Only the domain of the address: the line goes to log stores.
        assert!(!line.to_string().contains("ada@") && !line.to_string().contains("gone@"));
    }
    mailer.kill().await;
}

/// In the default text format, written to a file, the line holds `field=value` pairs as they
/// are, so `grep status=sent` finds it: no terminal colour codes between name and value.
#[tokio::test]
async fn a_text_log_file_holds_plain_field_value_pairs_an_operator_can_grep() {
    let smtp = SmtpSink::start();
    let port = smtp.port().to_string();
    let mailer = MailerProcess::start(&[
        ("FACTEUR_LOG__FORMAT", "text"),
        ("FACTEUR_LOG__LEVEL", "info"),
        ("FACTEUR_MAILER__SMTP__HOST", "127.0.0.1"),
        ("FACTEUR_MAILER__SMTP__PORT", &port),
        ("FACTEUR_MAILER__SMTP__TLS", "none"),
    ])
    .await;
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    post(&mailer, &request).await;
    wait_status(&mailer, &id, "sent").await;
    let wanted = format!("mail_id={id}");
    let found = testkit::eventually(Duration::from_secs(5), || async {
        mailer
            .log()
            .lines()
            .any(|line| line.contains(&wanted) && line.contains("status=sent"))
    })
    .await;
    let log = mailer.log();
    assert!(found, "no line with {wanted} and status=sent in\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );
    mailer.kill().await;
}
