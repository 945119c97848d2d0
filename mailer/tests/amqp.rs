//! The mailer as the RabbitMQ consumer: a request published through the transport crate's
//! AMQP publisher is stored, sent once, and its `mail-status` appears on the events exchange.

use crate::common::{fast_options, mail_request, outbox_files, spawn_with, test_config};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use transport::amqp::{AmqpPublisher, TopologyNames, declare_topology};
use transport::{Receipt, Transport};

use testkit::amqp::RABBITMQ_URL as AMQP;

async fn rabbitmq_reachable(test: &str) -> bool {
    testkit::skip::available(testkit::skip::RABBITMQ, test)
}

/// A queue bound to every `mail.*` of the events exchange, and a consumer of it.
pub async fn observe_events(
    names: &TopologyNames,
) -> (Connection, lapin::Channel, lapin::Consumer) {
    let connection = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    declare_topology(&channel, names).await.unwrap();
    let observer = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            observer.name().clone(),
            names.events_exchange.as_str().into(),
            "mail.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let events = channel
        .basic_consume(
            observer.name().clone(),
            "observer".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, channel, events)
}

/// Deletes the test's queues and exchanges and closes `connection`.
pub async fn remove_topology(connection: Connection, names: &TopologyNames) {
    testkit::amqp::delete_topology(&names.queues(), &names.exchanges()).await;
    let _ = connection.close(200, "done".into()).await;
}

/// A configuration on the AMQP transport with names of its own.
fn amqp_config(dir: &tempfile::TempDir) -> domain::config::Config {
    let mut config = test_config(dir);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    config.transport.kind = domain::config::TransportKind::Amqp;
    config.transport.amqp.exchange = format!("facteur.test.{suffix}");
    config.transport.amqp.queue = format!("facteur.test.{suffix}.requests");
    config
}

#[tokio::test]
async fn a_request_consumed_from_rabbitmq_is_sent_once_and_its_status_published() {
    let test = "a_request_consumed_from_rabbitmq_is_sent_once_and_its_status_published";
    if !rabbitmq_reachable(test).await {
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let config = amqp_config(&dir);
    let names = TopologyNames::of(&config.transport.amqp);
    let app = spawn_with(config.clone(), fast_options(), Arc::new(dir)).await;

    let (connection, _channel, mut events) = observe_events(&names).await;

    let publisher = AmqpPublisher::start(&config.transport.amqp);
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(15))
            .await
    );
    let request = domain::MailRequest::from_value(mail_request("welcome", "fr")).unwrap();
    let id = request.id.to_string();

    assert_eq!(
        publisher.publish(&request).await.unwrap(),
        Receipt::Confirmed
    );
    assert_eq!(
        publisher.publish(&request).await.unwrap(),
        Receipt::Confirmed
    );
    app.wait_for_status(&id, "sent", Duration::from_secs(20))
        .await;
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let delivery = events.next().await.expect("an event").expect("a delivery");
            if delivery.routing_key.as_str() == "mail.sent" {
                return serde_json::from_slice::<serde_json::Value>(&delivery.data).unwrap();
            }
        }
    })
    .await
    .expect("mail.sent arrives on the events exchange");
    // Once the second copy is answered `duplicate`, nothing else can come of it.
    let second_answered = testkit::eventually(Duration::from_secs(10), || async {
        app.metrics()
            .await
            .contains("mail_requests_total{door=\"amqp\",status=\"duplicate\"} 1")
    })
    .await;
    assert!(second_answered, "the second copy is answered duplicate");

    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["status"], "sent");
    assert_eq!(
        outbox_files(&app).len(),
        1,
        "the same request twice gives one mail"
    );
    let (_, health) = app.get("/health").await;
    assert_eq!(
        health["transport"],
        serde_json::json!({"amqp": "connected"})
    );

    publisher.close().await;
    drop(app);
    remove_topology(connection, &names).await;
}

/// An operator's status changes reach the events exchange like a try's: a retry's
/// `mail.queued`, a cancel's `mail.cancelled`, and `mail.suppressed` for a request to a
/// suppressed address.
#[tokio::test]
async fn operators_status_changes_are_published_on_the_events_exchange() {
    let test = "operators_status_changes_are_published_on_the_events_exchange";
    if !rabbitmq_reachable(test).await {
        return;
    }
    let Some(smtp) = crate::common::node_smtp::NodeSmtp::start(test, &[]).await else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = amqp_config(&dir);
    config.mailer.smtp = Some(smtp.config());
    config.mailer.max_attempts = 2;
    let names = TopologyNames::of(&config.transport.amqp);
    let mut options = fast_options();
    // A deferred mail waits 15 to 30 s for its next try: long enough to be cancelled.
    options.delivery.retry_base = Duration::from_secs(30);
    options.delivery.retry_cap = Duration::from_secs(60);
    let app = spawn_with(config, options, Arc::new(dir)).await;
    let (connection, _channel, mut events) = observe_events(&names).await;

    let send = |local: &str| {
        let mut request = mail_request("welcome", "en");
        request["to"]["email"] =
            format!("{local}-{}@example.com", uuid::Uuid::new_v4().simple()).into();
        request
    };
    // 552 once: failed at once, then retried.
    let full = send("fullonce");
    let later = send("later");
    let grace = send("grace");
    let id = |r: &serde_json::Value| r["id"].as_str().unwrap().to_string();
    let (code, _) = app
        .post(
            "/suppressions",
            &serde_json::json!({"email": grace["to"]["email"]}),
        )
        .await;
    assert_eq!(code, 201);
    for request in [&full, &later, &grace] {
        assert_eq!(app.post_mail(request).await.0, 202);
    }
    app.wait_for_status(&id(&full), "failed", Duration::from_secs(10))
        .await;
    app.wait_for_status(&id(&later), "retrying", Duration::from_secs(10))
        .await;
    let (code, _) = app
        .post(
            &format!("/mails/{}/retry", id(&full)),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = app
        .post(
            &format!("/mails/{}/cancel", id(&later)),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(code, 200);

    let want = [
        ("mail.suppressed", id(&grace)),
        ("mail.queued", id(&full)),
        ("mail.sent", id(&full)),
        ("mail.cancelled", id(&later)),
    ];
    let mut seen: Vec<(String, serde_json::Value)> = Vec::new();
    let found = |seen: &[(String, serde_json::Value)], key: &str, id: &str| {
        seen.iter().any(|(k, body)| k == key && body["id"] == id)
    };
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while !want.iter().all(|(k, id)| found(&seen, k, id)) {
            let delivery = events.next().await.expect("an event").expect("a delivery");
            let body = serde_json::from_slice(&delivery.data).unwrap();
            seen.push((delivery.routing_key.as_str().to_string(), body));
        }
    })
    .await;
    for (key, id) in &want {
        assert!(found(&seen, key, id), "{key} for {id}: {seen:?}");
    }
    let cancelled = seen
        .iter()
        .find(|(k, _)| k == "mail.cancelled")
        .map(|(_, body)| body.clone())
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["attempts"], 1);
    drop(app);
    remove_topology(connection, &names).await;
}
