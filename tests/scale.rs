//! More than one of each: two mailers on one AMQP queue and one PostgreSQL delivery store
//! share the work and send each mail once; two users instances on one PostgreSQL outbox
//! publish each row once.

use crate::support::postgres::FreshDatabase;
use crate::support::stack::{Kind, Stack, metric_sum_with, terminate};
use std::sync::Arc;
use std::time::Duration;
use testkit::free_port;
use testkit::skip::POSTGRES;
use testkit::skip::{RABBITMQ, available, report};
use testkit::smtp::{SmtpSink, count_by_message_id};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn two_mailers_on_one_queue_share_the_work_and_send_each_mail_once() {
    let test = "two_mailers_on_one_queue_share_the_work_and_send_each_mail_once";
    if !available(RABBITMQ, test) || !available(POSTGRES, test) {
        return;
    }
    let _broker = crate::faults::broker_shared().await;
    let deliveries = FreshDatabase::create("mailers");
    let mut stack = Stack::configure(Kind::Amqp, SmtpSink::start());
    stack.set_env("FACTEUR_MAILER__DATABASE", &deliveries.url());
    stack.start_mailer().await;
    let second_port = free_port();
    let mut second = stack.spawn_with(
        "mailer",
        "mailer-2",
        &[("FACTEUR_MAILER__LISTEN", format!("127.0.0.1:{second_port}"))],
    );
    let second_url = format!("http://127.0.0.1:{second_port}");
    stack.wait_healthy("mailer-2", second_url.clone()).await;
    stack.start_users().await;

    let stack = Arc::new(stack);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let stack = stack.clone();
        tasks.spawn(async move {
            for n in 0..50 {
                stack.create_user(&format!("pair{worker}x{n}")).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create task");
    }
    stack.smtp.wait_for(200, WAIT).await;
    let mails = stack.settled_mails().await;
    let (counts, _) = count_by_message_id(&mails);
    let first_share = stack
        .metric(&stack.mailer_url(), "mail_requests_total")
        .await;
    let second_share = stack.metric(&second_url, "mail_requests_total").await;
    report(&format!(
        "two mailers on one queue: mails expected 200, received {} distinct, duplicates {}; requests taken {first_share} + {second_share}",
        counts.len(),
        mails.len() - counts.len()
    ));
    assert_eq!(counts.len(), 200);
    assert_eq!(mails.len(), 200, "each mail once");
    assert!(
        first_share > 0.0 && second_share > 0.0,
        "both mailers took requests"
    );
    terminate(&mut second).await;
}

#[tokio::test]
async fn two_users_instances_on_one_outbox_publish_each_row_once() {
    let test = "two_users_instances_on_one_outbox_publish_each_row_once";
    if !available(POSTGRES, test) {
        return;
    }
    let accounts = FreshDatabase::create("users");
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    stack.set_env("FACTEUR_USERS__DATABASE", &accounts.url());
    stack.start_mailer().await;
    stack.start_users().await;
    let second_port = free_port();
    let mut second = stack.spawn_with(
        "users",
        "users-2",
        &[("FACTEUR_USERS__LISTEN", format!("127.0.0.1:{second_port}"))],
    );
    let second_url = format!("http://127.0.0.1:{second_port}");
    stack.wait_healthy("users-2", second_url.clone()).await;

    // Half the accounts through each instance: both relays see every row of the shared outbox.
    let stack = Arc::new(stack);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let stack = stack.clone();
        let base = if worker % 2 == 0 {
            stack.users_url()
        } else {
            second_url.clone()
        };
        tasks.spawn(async move {
            for n in 0..50 {
                stack
                    .create_user_at(&base, &format!("shared{worker}x{n}"))
                    .await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create task");
    }
    stack.smtp.wait_for(200, WAIT).await;
    let mails = stack.settled_mails().await;
    let published = stack
        .metric(&stack.users_url(), "outbox_published_total")
        .await
        + stack.metric(&second_url, "outbox_published_total").await;
    let mailer_metrics = stack.metrics_text(&stack.mailer_url()).await;
    // `+ 0.0` turns the empty sum's -0 into 0 for the report.
    let duplicates_seen = metric_sum_with(
        &mailer_metrics,
        "mail_requests_total",
        &["status=\"duplicate\""],
    ) + 0.0;
    report(&format!(
        "two users relays on one outbox: rows 200, published {published}, mails {}, duplicate requests at the mailer {duplicates_seen}",
        mails.len()
    ));
    assert_eq!(mails.len(), 200);
    assert_eq!(
        published, 200.0,
        "each outbox row published once across both relays"
    );
    terminate(&mut second).await;
}

/// With socket.io, each users instance is a client of one mailer; several mailers share one
/// PostgreSQL delivery store, so a request id is `duplicate` on every mailer once any took it.
#[tokio::test]
async fn socketio_mailers_on_one_store_send_each_mail_once() {
    let test = "socketio_mailers_on_one_store_send_each_mail_once";
    if !available(POSTGRES, test) {
        return;
    }
    let deliveries = FreshDatabase::create("sio_mailers");
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    stack.set_env("FACTEUR_MAILER__DATABASE", &deliveries.url());
    stack.start_mailer().await;
    stack.start_users().await;
    let (mailer_port, users_port) = (free_port(), free_port());
    let mailer_url = format!("http://127.0.0.1:{mailer_port}");
    let users_url = format!("http://127.0.0.1:{users_port}");
    let mut second_mailer = stack.spawn_with(
        "mailer",
        "mailer-2",
        &[("FACTEUR_MAILER__LISTEN", format!("127.0.0.1:{mailer_port}"))],
    );
    stack.wait_healthy("mailer-2", mailer_url.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut second_users = stack.spawn_with(
        "users",
        "users-2",
        &[
            ("FACTEUR_USERS__LISTEN", format!("127.0.0.1:{users_port}")),
            (
                "FACTEUR_USERS__DATABASE",
                format!("sqlite://{}/users-2.db?mode=rwc", dir.path().display()),
            ),
            ("FACTEUR_TRANSPORT__SOCKETIO__URL", mailer_url.clone()),
        ],
    );
    stack.wait_healthy("users-2", users_url.clone()).await;

    for n in 0..100 {
        let base = if n % 2 == 0 {
            stack.users_url()
        } else {
            users_url.clone()
        };
        stack.create_user_at(&base, &format!("sio{n}")).await;
    }
    stack.smtp.wait_for(100, WAIT).await;
    let mails = stack.settled_mails().await;
    let (counts, _) = count_by_message_id(&mails);
    assert_eq!(counts.len(), 100);
    assert_eq!(mails.len(), 100, "each mail once");

    // A request the first mailer took is a duplicate on the second.
    let taken_id = mails[0]
        .message_id
        .split('@')
        .next()
        .expect("id")
        .to_string();
    let record: serde_json::Value = stack
        .http()
        .get(format!("{}/mails/{taken_id}", stack.mailer_url()))
        .bearer_auth(crate::support::stack::SERVICE_TOKEN)
        .send()
        .await
        .expect("GET /mails/{id}")
        .json()
        .await
        .expect("a record");
    let replay = serde_json::json!({
        "id": taken_id, "template": record["template"], "locale": record["locale"],
        "to": record["to"], "vars": {"login": "replayed"}, "requested_at": "2026-11-27T08:00:00Z"
    });
    let response = stack
        .http()
        .post(format!("{mailer_url}/mails"))
        .bearer_auth(crate::support::stack::SERVICE_TOKEN)
        .json(&replay)
        .send()
        .await
        .expect("POST /mails");
    let status = response.status();
    let answer: serde_json::Value = response.json().await.expect("an answer");
    assert_eq!(
        (status, answer["status"].as_str()),
        (reqwest::StatusCode::OK, Some("duplicate")),
        "{answer}"
    );
    report(&format!(
        "two socket.io mailers on one store: mails expected 100, received {} distinct, duplicates {}; replay through the other mailer: {}",
        counts.len(),
        mails.len() - counts.len(),
        answer["status"]
    ));
    terminate(&mut second_users).await;
    terminate(&mut second_mailer).await;
}
