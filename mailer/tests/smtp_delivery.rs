//! Delivery against a real SMTP server (mailin-embedded in process): content, Message-ID,
//! retries on 4xx, immediate failure on 5xx, one mail per id, and restarts mid-retry.

use crate::common::{TestApp, fast_options, mail_request, spawn_with, test_config};
use mailer::MailerOptions;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use testkit::smtp::{Reply, SmtpSink};

async fn spawn_with_smtp(smtp: &SmtpSink, max_attempts: u32) -> TestApp {
    spawn_with_smtp_and(smtp, max_attempts, fast_options()).await
}

async fn spawn_with_smtp_and(
    smtp: &SmtpSink,
    max_attempts: u32,
    options: MailerOptions,
) -> TestApp {
    let dir = TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.smtp = Some(crate::common::smtp_config(smtp.addr()));
    config.mailer.max_attempts = max_attempts;
    spawn_with(config, options, Arc::new(dir)).await
}

fn id_of(request: &serde_json::Value) -> String {
    request["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_template_and_locale_arrives_as_text_and_html_with_the_contract_message_id() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    let mut sent = Vec::new();
    for template in [
        "welcome",
        "account_updated",
        "account_deleted",
        "password_reset",
        "email_verification",
        "email_changed",
        "password_changed",
    ] {
        for locale in ["fr", "en"] {
            let request = mail_request(template, locale);
            assert_eq!(app.post_mail(&request).await.0, 202);
            sent.push((template, locale, id_of(&request)));
        }
    }
    for (template, locale, id) in &sent {
        app.wait_for_status(id, "sent", Duration::from_secs(15))
            .await;
        let mails = smtp.mails_for(id);
        assert_eq!(mails.len(), 1, "{template} {locale}");
        let mail = &mails[0];
        assert_eq!(
            mail.header("message-id").unwrap(),
            format!("<{id}@facteur.local>")
        );
        assert!(mail.header("to").unwrap().contains("ada@example.com"));
        assert!(
            mail.header("from")
                .unwrap()
                .contains("no-reply@facteur.local")
        );
        let text = mail.text.as_deref().expect("a text part");
        let html = mail.html.as_deref().expect("an HTML part");
        let greeting = if *locale == "fr" {
            "Bonjour Ada Lovelace"
        } else {
            "Hello Ada Lovelace"
        };
        assert!(text.contains(greeting), "{template} {locale}: {text}");
        assert!(html.contains(greeting), "{template} {locale}: {html}");
    }
    let welcome_fr = smtp.mails_for(&sent[1 - 1].2);
    assert_eq!(
        welcome_fr[0].header("subject").unwrap(),
        "Bienvenue sur Facteur, Ada Lovelace !"
    );
    let reset_en = smtp.mails_for(&sent[7].2);
    assert!(
        reset_en[0]
            .text
            .as_deref()
            .unwrap()
            .contains("http://127.0.0.1:3000/password-resets/abc")
    );
}

#[tokio::test]
async fn a_transient_4xx_is_retried_until_the_mail_is_sent() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    smtp.fail_next(2, Reply::Transient);
    let request = mail_request("welcome", "en");
    let id = id_of(&request);

    assert_eq!(app.post_mail(&request).await.0, 202);
    let record = app
        .wait_for_status(&id, "sent", Duration::from_secs(15))
        .await;

    assert_eq!(record["attempts"], 3);
    assert!(record["last_error"].is_null(), "{record}");
    assert_eq!(smtp.mails_for(&id).len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smtp_errors_total{class=\"transient\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("deliveries_total{status=\"retrying\",template=\"welcome\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_permanent_5xx_fails_the_delivery_at_once() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    smtp.fail_next(1, Reply::Permanent);
    let request = mail_request("account_deleted", "en");
    let id = id_of(&request);

    app.post_mail(&request).await;
    let record = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;

    assert_eq!(record["attempts"], 1);
    assert!(
        record["last_error"].as_str().unwrap().contains("550"),
        "{record}"
    );
    assert!(smtp.mails_for(&id).is_empty());
    // Refused at `MAIL FROM`: about the sender, so the recipient is not suppressed.
    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 0, "{list}");
}

/// A server without PIPELINING is spoken to one command at a time; a 550 to `RCPT TO` is
/// told apart there too, and suppresses the address.
#[tokio::test]
async fn a_550_to_rcpt_from_a_server_that_does_not_pipeline_suppresses_the_address() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    smtp.fail_next(1, Reply::NoMailbox);
    let request = mail_request("account_deleted", "en");
    let id = id_of(&request);

    app.post_mail(&request).await;
    let record = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;

    assert_eq!(record["attempts"], 1);
    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["email"], "ada@example.com");
    assert!(list["items"][0]["reason"].as_str().unwrap().contains("550"));
    let again = mail_request("welcome", "en");
    app.post_mail(&again).await;
    app.wait_for_status(&id_of(&again), "suppressed", Duration::from_secs(5))
        .await;
    assert!(smtp.mails_for(&id_of(&again)).is_empty());
}

#[tokio::test]
async fn transient_failures_beyond_max_attempts_end_failed() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 3).await;
    smtp.fail_next(10, Reply::Transient);
    let request = mail_request("welcome", "fr");
    let id = id_of(&request);

    app.post_mail(&request).await;
    let record = app
        .wait_for_status(&id, "failed", Duration::from_secs(15))
        .await;

    assert_eq!(record["attempts"], 3);
    assert!(
        record["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts")
    );
    assert!(smtp.mails_for(&id).is_empty());
}

#[tokio::test]
async fn the_same_id_sent_many_times_gives_one_mail() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    let request = mail_request("welcome", "en");
    let id = id_of(&request);

    let answers = futures_util::future::join_all((0..20).map(|_| app.post_mail(&request))).await;
    app.wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
    app.drain().await;

    let accepted = answers
        .iter()
        .filter(|(_, a)| a["status"] == "accepted")
        .count();
    let duplicate = answers
        .iter()
        .filter(|(_, a)| a["status"] == "duplicate")
        .count();
    assert_eq!((accepted, duplicate), (1, 19));
    assert_eq!(smtp.mails_for(&id).len(), 1);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_retries_still_sends_the_mail_once() {
    let smtp = SmtpSink::start();
    let app = spawn_with_smtp(&smtp, 8).await;
    smtp.fail_next(2, Reply::Transient);
    let request = mail_request("password_reset", "fr");
    let id = id_of(&request);

    app.post_mail(&request).await;
    app.wait_for_status(&id, "retrying", Duration::from_secs(10))
        .await;
    let app = app.restart().await;
    let record = app
        .wait_for_status(&id, "sent", Duration::from_secs(15))
        .await;
    app.drain().await;

    assert_eq!(smtp.mails_for(&id).len(), 1);
    assert_eq!(record["attempts"], 3);
    let (_, again) = app.post_mail(&request).await;
    assert_eq!(again["status"], "duplicate");
}

#[tokio::test]
async fn a_mail_left_mid_send_by_a_stopped_process_is_sent_again_and_counted_as_a_possible_resend()
{
    let smtp = SmtpSink::start();
    // A long retry wait, so the retry cannot happen before the test stops the mailer.
    let mut options = fast_options();
    options.delivery.retry_base = Duration::from_secs(20);
    let app = spawn_with_smtp_and(&smtp, 8, options).await;
    smtp.fail_next(1, Reply::Transient);
    let request = mail_request("welcome", "en");
    let id = id_of(&request);
    app.post_mail(&request).await;
    app.wait_for_status(&id, "retrying", Duration::from_secs(10))
        .await;
    let mut app = app;
    app.stop().await;
    // What a process that died during the SMTP handoff leaves behind: a claimed record.
    let db = sea_orm::Database::connect(app.config.mailer.database.as_str())
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("UPDATE mail_deliveries SET status = 'sending' WHERE id = '{id}'"),
    )
    .await
    .unwrap();
    db.close().await.unwrap();

    let app = app.restart().await;
    let record = app
        .wait_for_status(&id, "sent", Duration::from_secs(15))
        .await;

    assert_eq!(record["attempts"], 2);
    assert_eq!(smtp.mails_for(&id).len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smtp_possible_resends_total 1"),
        "{metrics}"
    );
}
