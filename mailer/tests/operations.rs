//! Operating deliveries against the real mailer and a real SMTP server (nodemailer's
//! `smtp-server`, whose replies are chosen by the recipient: tests/js/smtp-server.js):
//! retrying, cancelling and the suppression list, on SQLite and on PostgreSQL, and the schema
//! upgrade that brings the suppression list.

use crate::common::node_smtp::NodeSmtp;
use crate::common::{TestApp, fast_options, mail_request, spawn_with, test_config};
use crate::store_backends::{drop_postgres, fresh_postgres, insert_raw};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A mailer sending to a real SMTP server, on one backend.
struct Setup {
    app: TestApp,
    smtp: NodeSmtp,
    postgres: Option<String>,
}

impl Setup {
    /// Starts the SMTP server and the mailer (`max_attempts` tries, retries from
    /// `retry_base`), or `None` when a service is missing and the test skipped.
    async fn start(
        test: &str,
        backend: Backend,
        max_attempts: u32,
        retry_base: Duration,
    ) -> Option<Setup> {
        let smtp = NodeSmtp::start(test, &[]).await?;
        let dir = tempfile::TempDir::new().expect("a temporary folder");
        let mut config = test_config(&dir);
        config.mailer.smtp = Some(smtp.config());
        config.mailer.max_attempts = max_attempts;
        let mut postgres = None;
        if let Backend::Postgres = backend {
            let (url, name) = fresh_postgres(test).await?;
            config.mailer.database = url;
            postgres = Some(name);
        }
        let mut options = fast_options();
        options.delivery.retry_base = retry_base;
        options.delivery.retry_cap = retry_base * 4;
        let app = spawn_with(config, options, Arc::new(dir)).await;
        Some(Setup {
            app,
            smtp,
            postgres,
        })
    }

    async fn end(self) {
        let Setup {
            mut app, postgres, ..
        } = self;
        app.stop().await;
        if let Some(name) = postgres {
            drop_postgres(&name).await;
        }
    }
}

/// A fresh address with a local part starting `prefix` (which chooses the server's reply).
fn address(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A request for `template` to `email`.
fn request_to(template: &str, email: &str) -> Value {
    let mut request = mail_request(template, "en");
    request["to"]["email"] = email.into();
    request
}

/// Stores a request to `email` and returns its id.
async fn send(app: &TestApp, template: &str, email: &str) -> String {
    let request = request_to(template, email);
    let (code, answer) = app.post_mail(&request).await;
    assert_eq!(code, 202, "{answer}");
    request["id"].as_str().unwrap().to_string()
}

/// How many stored deliveries have `status`.
async fn count(app: &TestApp, status: &str) -> u64 {
    let (code, page) = app.get(&format!("/mails?status={status}&per_page=1")).await;
    assert_eq!(code, 200, "{page}");
    page["total"].as_u64().unwrap()
}

async fn wait_for_count(app: &TestApp, status: &str, n: u64, within: Duration) {
    let reached = testkit::eventually(within, || async { count(app, status).await == n }).await;
    let now = count(app, status).await;
    assert!(
        reached,
        "{n} deliveries should be {status} within {within:?}; {now} are"
    );
}

async fn a_mail_failed_by_4xx_is_retried_by_id_and_sent_once(test: &str, backend: Backend) {
    let Some(s) = Setup::start(test, backend, 2, Duration::from_millis(100)).await else {
        return;
    };
    // 451 at the first two tries: with two attempts allowed, it ends failed.
    let to = address("later");
    let id = send(&s.app, "welcome", &to).await;
    let failed = s
        .app
        .wait_for_status(&id, "failed", Duration::from_secs(15))
        .await;
    assert_eq!(failed["attempts"], 2);
    assert!(s.smtp.mails_for(&id).is_empty());

    let (code, record) = s.app.post(&format!("/mails/{id}/retry"), &json!({})).await;
    assert_eq!(code, 200, "{record}");
    assert_eq!(record["status"], "queued");
    assert_eq!(record["id"], id.as_str());
    let sent = s
        .app
        .wait_for_status(&id, "sent", Duration::from_secs(15))
        .await;
    assert_eq!(sent["attempts"], 3, "tries go on counting: {sent}");
    // A second handoff, if there were one, would be done by now.
    s.app.drain().await;
    let mails = s.smtp.mails_for(&id);
    assert_eq!(mails.len(), 1, "sent once");
    assert!(
        mails[0]["message_id"].as_str().unwrap().contains(&id),
        "the same Message-ID: {}",
        mails[0]["message_id"]
    );
    assert_eq!(s.smtp.rcpt_replies(&to), vec![451, 451, 250]);

    let (code, refused) = s.app.post(&format!("/mails/{id}/retry"), &json!({})).await;
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused["error"], "not_retryable");
    assert!(refused["message"].as_str().unwrap().contains("sent"));
    let unknown = uuid::Uuid::now_v7();
    let (code, missing) = s
        .app
        .post(&format!("/mails/{unknown}/retry"), &json!({}))
        .await;
    assert_eq!(code, 404, "{missing}");
    assert_eq!(missing["error"], "not_found");
    let (code, _) = s.app.post("/mails/not-a-uuid/retry", &json!({})).await;
    assert_eq!(code, 400);
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains("mail_operations_total{operation=\"retry\"} 1"),
        "{metrics}"
    );
    s.end().await;
}

#[tokio::test]
async fn a_mail_failed_by_4xx_is_retried_by_id_and_sent_once_on_sqlite() {
    let test = "a_mail_failed_by_4xx_is_retried_by_id_and_sent_once_on_sqlite";
    a_mail_failed_by_4xx_is_retried_by_id_and_sent_once(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn a_mail_failed_by_4xx_is_retried_by_id_and_sent_once_on_postgres() {
    let test = "a_mail_failed_by_4xx_is_retried_by_id_and_sent_once_on_postgres";
    a_mail_failed_by_4xx_is_retried_by_id_and_sent_once(test, Backend::Postgres).await;
}

async fn a_bulk_retry_sends_each_failed_mail_of_a_template_once(test: &str, backend: Backend) {
    let Some(s) = Setup::start(test, backend, 2, Duration::from_millis(50)).await else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(send(&s.app, "welcome", &address("later")).await);
    }
    // Another template's failure, which the filter leaves alone.
    let other_to = address("later");
    let other = send(&s.app, "account_deleted", &other_to).await;
    wait_for_count(&s.app, "failed", 201, Duration::from_secs(60)).await;

    let (code, bad) = s
        .app
        .post("/mails/retry", &json!({"template": "welcome"}))
        .await;
    assert_eq!(code, 400, "the status is required: {bad}");
    assert_eq!(bad["error"], "invalid_filter");
    let (code, bad) = s
        .app
        .post(
            "/mails/retry",
            &json!({"status": "failed", "template": "nope"}),
        )
        .await;
    assert_eq!(code, 400, "{bad}");
    let (code, answer) = s
        .app
        .post(
            "/mails/retry",
            &json!({"status": "failed", "template": "welcome"}),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer, json!({"retried": 200}));
    wait_for_count(&s.app, "sent", 200, Duration::from_secs(60)).await;
    s.app.drain().await;
    for id in &ids {
        assert_eq!(s.smtp.mails_for(id).len(), 1, "{id} is sent once");
    }
    let (_, left) = s.app.get(&format!("/mails/{other}")).await;
    assert_eq!(left["status"], "failed", "{left}");
    // Nothing failed is left to match.
    let (_, again) = s
        .app
        .post(
            "/mails/retry",
            &json!({"status": "failed", "template": "welcome"}),
        )
        .await;
    assert_eq!(again, json!({"retried": 0}));
    // `to` names the recipient in any spelling of its address.
    let (_, by_address) = s
        .app
        .post(
            "/mails/retry",
            &json!({"status": "failed", "to": other_to.to_uppercase()}),
        )
        .await;
    assert_eq!(by_address, json!({"retried": 1}));
    s.app
        .wait_for_status(&other, "sent", Duration::from_secs(10))
        .await;
    s.end().await;
}

#[tokio::test]
async fn a_bulk_retry_sends_each_failed_mail_of_a_template_once_on_sqlite() {
    let test = "a_bulk_retry_sends_each_failed_mail_of_a_template_once_on_sqlite";
    a_bulk_retry_sends_each_failed_mail_of_a_template_once(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn a_bulk_retry_sends_each_failed_mail_of_a_template_once_on_postgres() {
    let test = "a_bulk_retry_sends_each_failed_mail_of_a_template_once_on_postgres";
    a_bulk_retry_sends_each_failed_mail_of_a_template_once(test, Backend::Postgres).await;
}

async fn a_cancelled_retry_never_reaches_smtp_again(test: &str, backend: Backend) {
    // The next try comes 0.5 to 1 s after the first.
    let Some(s) = Setup::start(test, backend, 5, Duration::from_secs(1)).await else {
        return;
    };
    let to = address("later");
    let id = send(&s.app, "welcome", &to).await;
    s.app
        .wait_for_status(&id, "retrying", Duration::from_secs(10))
        .await;
    let (code, record) = s.app.post(&format!("/mails/{id}/cancel"), &json!({})).await;
    assert_eq!(code, 200, "{record}");
    assert_eq!(record["status"], "cancelled");
    // The time of its next try (at most 1 s after the first) is what is under test: once
    // it has come, whatever was due then is tried, and the cancelled mail must not be.
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.app.drain().await;
    let (_, after) = s.app.get(&format!("/mails/{id}")).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["attempts"], 1);
    assert_eq!(
        s.smtp.rcpt_replies(&to),
        vec![451],
        "tried once, before the cancel"
    );
    let (code, again) = s.app.post(&format!("/mails/{id}/cancel"), &json!({})).await;
    assert_eq!(code, 409, "{again}");
    assert_eq!(again["error"], "not_cancellable");

    let sent = send(&s.app, "welcome", &address("ada")).await;
    s.app
        .wait_for_status(&sent, "sent", Duration::from_secs(10))
        .await;
    let (code, refused) = s
        .app
        .post(&format!("/mails/{sent}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused["error"], "not_cancellable");
    assert!(refused["message"].as_str().unwrap().contains("sent"));
    let unknown = uuid::Uuid::now_v7();
    let (code, _) = s
        .app
        .post(&format!("/mails/{unknown}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 404);
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains("mail_operations_total{operation=\"cancel\"} 1")
            && metrics.contains("deliveries_total{status=\"cancelled\",template=\"welcome\"} 1"),
        "{metrics}"
    );
    s.end().await;
}

#[tokio::test]
async fn a_cancelled_retry_never_reaches_smtp_again_on_sqlite() {
    let test = "a_cancelled_retry_never_reaches_smtp_again_on_sqlite";
    a_cancelled_retry_never_reaches_smtp_again(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn a_cancelled_retry_never_reaches_smtp_again_on_postgres() {
    let test = "a_cancelled_retry_never_reaches_smtp_again_on_postgres";
    a_cancelled_retry_never_reaches_smtp_again(test, Backend::Postgres).await;
}

/// 50 cancels sent while the dispatcher claims the same mails: the store lets exactly one
/// of the two writes through for each.
async fn cancels_racing_the_dispatcher_have_one_winner(test: &str, backend: Backend) {
    let Some(s) = Setup::start(test, backend, 3, Duration::from_millis(100)).await else {
        return;
    };
    let requests: Vec<Value> = (0..50)
        .map(|_| request_to("welcome", &address("race")))
        .collect();
    let ids: Vec<String> = requests
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // All at once, each cancel right after its mail is accepted: the dispatcher claims the
    // same mails meanwhile.
    let cancels = futures_util::future::join_all(requests.iter().map(|request| async {
        let (code, _) = s.app.post_mail(request).await;
        assert_eq!(code, 202);
        let id = request["id"].as_str().unwrap();
        s.app.post(&format!("/mails/{id}/cancel"), &json!({})).await
    }))
    .await;
    let (mut cancelled, mut sent) = (0, 0);
    for (id, (code, body)) in ids.iter().zip(cancels) {
        match code {
            200 => {
                cancelled += 1;
                assert_eq!(body["status"], "cancelled");
            }
            409 => {
                sent += 1;
                assert_eq!(body["error"], "not_cancellable", "{body}");
                s.app
                    .wait_for_status(id, "sent", Duration::from_secs(15))
                    .await;
            }
            other => panic!("cancel of {id} answered {other}: {body}"),
        }
    }
    // Any try a lost cancel would have let through is done by now.
    s.app.drain().await;
    for id in &ids {
        let (_, record) = s.app.get(&format!("/mails/{id}")).await;
        let at_smtp = s.smtp.mails_for(id).len();
        match record["status"].as_str().unwrap() {
            "cancelled" => assert_eq!(at_smtp, 0, "{id} was cancelled and sent"),
            "sent" => assert_eq!(at_smtp, 1, "{id} sent {at_smtp} times"),
            other => panic!("{id} ended {other}"),
        }
    }
    println!("{test}: {cancelled} cancelled, {sent} sent before their cancel");
    assert_eq!(cancelled + sent, 50);
    s.end().await;
}

#[tokio::test]
async fn cancels_racing_the_dispatcher_have_one_winner_on_sqlite() {
    let test = "cancels_racing_the_dispatcher_have_one_winner_on_sqlite";
    cancels_racing_the_dispatcher_have_one_winner(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn cancels_racing_the_dispatcher_have_one_winner_on_postgres() {
    let test = "cancels_racing_the_dispatcher_have_one_winner_on_postgres";
    cancels_racing_the_dispatcher_have_one_winner(test, Backend::Postgres).await;
}

async fn a_refused_recipient_is_suppressed_until_removed(test: &str, backend: Backend) {
    let Some(s) = Setup::start(test, backend, 3, Duration::from_millis(100)).await else {
        return;
    };
    // 550 at RCPT TO the first time only.
    let to = address("bounceonce");
    let first = send(&s.app, "welcome", &to).await;
    let failed = s
        .app
        .wait_for_status(&first, "failed", Duration::from_secs(10))
        .await;
    assert_eq!(failed["attempts"], 1, "a 550 is not retried: {failed}");
    assert!(failed["last_error"].as_str().unwrap().contains("550"));
    let (code, list) = s.app.get("/suppressions").await;
    assert_eq!(code, 200);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["email"], to.as_str());
    assert!(
        list["items"][0]["reason"].as_str().unwrap().contains("550"),
        "the server's reply is the reason: {list}"
    );

    // The same address, its domain in capitals: accepted, stored suppressed, never sent.
    let shouted = to.replace("@example.com", "@EXAMPLE.com");
    let second = send(&s.app, "welcome", &shouted).await;
    let record = s
        .app
        .wait_for_status(&second, "suppressed", Duration::from_secs(5))
        .await;
    assert!(
        record["last_error"]
            .as_str()
            .unwrap()
            .contains("suppression list")
    );
    let (code, refused) = s
        .app
        .post(&format!("/mails/{first}/retry"), &json!({}))
        .await;
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused["error"], "suppressed");
    s.app.drain().await;
    assert_eq!(
        s.smtp.rcpt_replies(&to),
        vec![550],
        "nothing more reached SMTP"
    );
    assert!(s.smtp.rcpt_replies(&shouted).is_empty());

    let (code, _) = s.app.delete(&format!("/suppressions/{shouted}")).await;
    assert_eq!(code, 204, "removed by any case of its domain");
    let (code, gone) = s.app.delete(&format!("/suppressions/{to}")).await;
    assert_eq!(code, 404, "{gone}");
    let third = send(&s.app, "welcome", &to).await;
    s.app
        .wait_for_status(&third, "sent", Duration::from_secs(10))
        .await;
    assert_eq!(s.smtp.mails_for(&third).len(), 1);
    let (_, still) = s.app.get(&format!("/mails/{second}")).await;
    assert_eq!(still["status"], "suppressed", "stays as it was stored");
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains("suppressions_added_total{source=\"smtp\"} 1")
            && metrics.contains("deliveries_total{status=\"suppressed\",template=\"welcome\"} 1")
            && metrics.contains("smtp_errors_total{class=\"recipient\"} 1"),
        "{metrics}"
    );
    s.end().await;
}

#[tokio::test]
async fn a_refused_recipient_is_suppressed_until_removed_on_sqlite() {
    let test = "a_refused_recipient_is_suppressed_until_removed_on_sqlite";
    a_refused_recipient_is_suppressed_until_removed(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn a_refused_recipient_is_suppressed_until_removed_on_postgres() {
    let test = "a_refused_recipient_is_suppressed_until_removed_on_postgres";
    a_refused_recipient_is_suppressed_until_removed(test, Backend::Postgres).await;
}

/// A permanent refusal that is about the mail (552, mailbox full), not the address, fails
/// the delivery without suppressing anyone.
#[tokio::test]
async fn a_full_mailbox_fails_the_mail_but_suppresses_nobody() {
    let test = "a_full_mailbox_fails_the_mail_but_suppresses_nobody";
    let Some(s) = Setup::start(test, Backend::Sqlite, 3, Duration::from_millis(100)).await else {
        return;
    };
    let id = send(&s.app, "welcome", &address("fullonce")).await;
    s.app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    let (_, list) = s.app.get("/suppressions").await;
    assert_eq!(list["total"], 0, "{list}");
    let (code, _) = s.app.post(&format!("/mails/{id}/retry"), &json!({})).await;
    assert_eq!(code, 200);
    s.app
        .wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
    s.end().await;
}

#[tokio::test]
async fn the_suppression_list_is_kept_through_its_routes() {
    let app = crate::common::spawn_app().await;
    let (code, added) = app
        .post(
            "/suppressions",
            &json!({"email": "Grace@Example.org", "reason": "asked to stop"}),
        )
        .await;
    assert_eq!(code, 201, "{added}");
    assert_eq!(added["email"], "Grace@Example.org", "kept as it was added");
    assert_eq!(added["reason"], "asked to stop");
    for spelling in ["Grace@example.ORG", "grace@example.org"] {
        let (code, again) = app
            .post("/suppressions", &json!({ "email": spelling }))
            .await;
        assert_eq!(code, 200, "listed already: {again}");
        assert_eq!(again["email"], "Grace@Example.org");
        assert_eq!(again["reason"], "asked to stop", "the first reason stays");
    }
    let (code, _) = app
        .post("/suppressions", &json!({"email": "ada@example.org"}))
        .await;
    assert_eq!(code, 201, "another address");
    for (body, what) in [
        (json!({}), "no email"),
        (json!({"email": "not an address"}), "not an address"),
        (json!({"email": "a@b.co", "extra": 1}), "an unknown field"),
        (json!({"email": 5}), "an email that is not a string"),
        (
            json!({"email": "a@b.co", "reason": "x\u{7}"}),
            "a control character",
        ),
        (
            json!({"email": "a@b.co", "reason": "x".repeat(1001)}),
            "a long reason",
        ),
    ] {
        let (code, error) = app.post("/suppressions", &body).await;
        assert_eq!(code, 400, "{what}: {error}");
        assert!(error["message"].as_str().is_some(), "{error}");
    }
    let (_, unknown) = app
        .post("/suppressions", &json!({"email": "a@b.co", "extra": 1}))
        .await;
    assert_eq!(unknown["error"], "invalid_request");
    assert!(unknown["details"]["extra"].is_string(), "named: {unknown}");
    let response = app
        .http
        .post(format!("{}/suppressions", app.base))
        .bearer_auth(&app.token)
        .body("email=a@b.co")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let (code, page) = app.get("/suppressions?per_page=1&page=2").await;
    assert_eq!(code, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (code, _) = app.get("/suppressions?per_page=1000").await;
    assert_eq!(code, 400);
    let anonymous = app
        .http
        .get(format!("{}/suppressions", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (code, _) = app.delete("/suppressions/grace@example.org").await;
    assert_eq!(code, 204);
    let (code, _) = app.delete("/suppressions/nobody").await;
    assert_eq!(code, 400);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("suppressions_added_total{source=\"api\"} 2"),
        "{metrics}"
    );
}

/// A database made by the schema before the suppression list (today's, two migrations),
/// with a delivery in it, is brought up to date at connect: the delivery is kept and the
/// list works.
async fn the_schema_upgrade_brings_the_suppression_list(url: &str) {
    use sea_orm_migration::MigratorTrait;
    let before = sea_orm::Database::connect(url).await.expect("connect");
    mailer::Migrator::up(&before, Some(2))
        .await
        .expect("the schema before the suppression list");
    let request = domain::MailRequest::from_value(request_to("welcome", "ada@example.com"))
        .expect("a valid request");
    insert_raw(&before, std::slice::from_ref(&request)).await;
    before.close_by_ref().await.unwrap();

    let store = crate::common::open_store(url, Default::default())
        .await
        .expect("connect and upgrade");
    let kept = store.get(request.id).await.unwrap().expect("kept");
    assert_eq!(kept.status, mailer::DeliveryStatus::Queued);
    let (entry, added) = store
        .suppress(&request.to.email, "550 test".into(), chrono::Utc::now())
        .await
        .expect("the new table takes an address");
    assert!(added);
    assert_eq!(entry.email.as_deref(), Some("ada@example.com"));
    let mut again = request.clone();
    again.id = domain::MailRequestId::new();
    match store.insert(again, None).await.unwrap() {
        mailer::Inserted::Stored(record) => {
            assert_eq!(record.status, mailer::DeliveryStatus::Suppressed)
        }
        mailer::Inserted::Duplicate => panic!("a new id"),
    }
    store.db().close_by_ref().await.unwrap();
}

#[tokio::test]
async fn the_schema_upgrade_brings_the_suppression_list_on_sqlite() {
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    the_schema_upgrade_brings_the_suppression_list(&url).await;
}

#[tokio::test]
async fn the_schema_upgrade_brings_the_suppression_list_on_postgres() {
    let test = "the_schema_upgrade_brings_the_suppression_list_on_postgres";
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    the_schema_upgrade_brings_the_suppression_list(&url).await;
    drop_postgres(&name).await;
}

/// `retry-mail` and `cancel-mail` with the official socket.io client: the same handlers
/// as the routes, each ack the route's body; and a request to a suppressed address heard
/// as `mail-status suppressed` on the socket that sent it.
async fn the_official_socket_io_client_retries_cancels_and_hears_suppressed(
    test: &str,
    backend: Backend,
) {
    let Some(modules) = crate::common::node_package(test, "socket.io-client") else {
        return;
    };
    // Retries 15 to 30 s apart: a deferred mail stays `retrying` for the whole test.
    let Some(s) = Setup::start(test, backend, 2, Duration::from_secs(30)).await else {
        return;
    };
    // 552 once: failed at once, sent when retried.
    let failed = send(&s.app, "welcome", &address("fullonce")).await;
    let retrying = send(&s.app, "welcome", &address("later")).await;
    let sent = send(&s.app, "welcome", &address("ada")).await;
    s.app
        .wait_for_status(&failed, "failed", Duration::from_secs(10))
        .await;
    s.app
        .wait_for_status(&retrying, "retrying", Duration::from_secs(10))
        .await;
    s.app
        .wait_for_status(&sent, "sent", Duration::from_secs(10))
        .await;
    let suppressed = address("grace");
    let (code, _) = s
        .app
        .post("/suppressions", &json!({"email": suppressed}))
        .await;
    assert_eq!(code, 201);

    let seen = crate::socketio_js::run_script(
        &modules,
        "socketio_operations.js",
        &[
            &s.app.base,
            &s.app.token,
            &failed,
            &retrying,
            &sent,
            &suppressed,
        ],
    )
    .await;

    assert_eq!(seen["retry_failed"]["id"], failed.as_str());
    assert_eq!(
        seen["retry_failed"]["status"], "queued",
        "{}",
        seen["retry_failed"]
    );
    assert_eq!(seen["retry_failed_statuses"], json!(["queued", "sent"]));
    assert_eq!(s.smtp.mails_for(&failed).len(), 1);
    assert_eq!(seen["retry_sent"]["error"], "not_retryable");
    assert!(seen["retry_sent"]["message"].as_str().is_some());
    assert_eq!(seen["retry_unknown"]["error"], "not_found");
    assert_eq!(seen["retry_garbage"]["error"], "invalid_id");
    assert_eq!(
        seen["cancel_retrying"]["status"], "cancelled",
        "{}",
        seen["cancel_retrying"]
    );
    assert_eq!(seen["cancel_sent"]["error"], "not_cancellable");
    assert_eq!(seen["cancel_unknown"]["error"], "not_found");
    let id = seen["suppressed_id"].as_str().unwrap();
    assert_eq!(
        seen["suppressed_ack"],
        json!({"id": id, "status": "accepted"})
    );
    assert_eq!(seen["suppressed_statuses"], json!(["suppressed"]));
    let (_, record) = s.app.get(&format!("/mails/{id}")).await;
    assert_eq!(record["status"], "suppressed");
    assert!(
        s.smtp.rcpt_replies(&suppressed).is_empty(),
        "nothing at SMTP"
    );
    let (_, cancelled) = s.app.get(&format!("/mails/{retrying}")).await;
    assert_eq!(cancelled["status"], "cancelled");
    s.end().await;
}

#[tokio::test]
async fn the_official_socket_io_client_retries_cancels_and_hears_suppressed_on_sqlite() {
    let test = "the_official_socket_io_client_retries_cancels_and_hears_suppressed_on_sqlite";
    the_official_socket_io_client_retries_cancels_and_hears_suppressed(test, Backend::Sqlite).await;
}

#[tokio::test]
async fn the_official_socket_io_client_retries_cancels_and_hears_suppressed_on_postgres() {
    let test = "the_official_socket_io_client_retries_cancels_and_hears_suppressed_on_postgres";
    the_official_socket_io_client_retries_cancels_and_hears_suppressed(test, Backend::Postgres)
        .await;
}
