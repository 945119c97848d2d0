//! AMQP behaviour with no socket.io counterpart: unroutable requests, the `unavailable`
//! requeue, and the `mail-status` events on `<exchange>.events`.

mod common;
#[path = "conformance/handler.rs"]
#[allow(dead_code)]
mod handler;

use async_trait::async_trait;
use common::{delete_topology, isolated_amqp_config, rabbitmq_is_reachable, welcome_request};
use domain::config::AmqpConfig;
use domain::{MailAnswer, MailRequest};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::amqp::RABBITMQ_URL;
use transport::amqp::{AmqpConsumer, AmqpEvents, AmqpPublisher, TopologyNames};
use transport::{MailHandler, Origin, PublishError, Receipt, Transport};

#[tokio::test]
async fn amqp_a_request_no_queue_can_take_is_a_retryable_error_not_a_confirm() {
    if !rabbitmq_is_reachable("amqp_a_request_no_queue_can_take_is_a_retryable_error_not_a_confirm")
        .await
    {
        return;
    }
    let config = isolated_amqp_config();
    let publisher = AmqpPublisher::start(&config);
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await
    );
    let connection = Connection::connect(RABBITMQ_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(config.queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();

    let outcome = publisher.publish(&welcome_request("ada@example.com")).await;

    assert!(
        matches!(&outcome, Err(PublishError::Retryable(m)) if m.contains("NO_ROUTE")),
        "{outcome:?}"
    );
    publisher.close().await;
    delete_topology(&config).await;
}

/// A consumer handing requests to `handler` and a publisher, both connected.
async fn connected_pair(
    config: &AmqpConfig,
    handler: Arc<dyn MailHandler>,
) -> (AmqpConsumer, AmqpPublisher) {
    let consumer = AmqpConsumer::start(config, handler);
    let publisher = AmqpPublisher::start(config);
    assert!(consumer.wait_until_connected(Duration::from_secs(10)).await);
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await
    );
    (consumer, publisher)
}

/// Answers `unavailable` for its first `failures` calls, then `accepted`.
struct FlakyStore {
    failures: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl MailHandler for FlakyStore {
    async fn handle(&self, request: MailRequest, _: Origin) -> MailAnswer {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            MailAnswer::unavailable(Some(request.id), "the store is down")
        } else {
            MailAnswer::accepted(request.id)
        }
    }
}

#[tokio::test]
async fn amqp_an_unavailable_answer_is_retried_until_the_request_is_stored() {
    if !rabbitmq_is_reachable("amqp_an_unavailable_answer_is_retried_until_the_request_is_stored")
        .await
    {
        return;
    }
    let config = isolated_amqp_config();
    let store = Arc::new(FlakyStore {
        failures: 2,
        calls: AtomicUsize::new(0),
    });
    let (consumer, publisher) = connected_pair(&config, store.clone()).await;

    let receipt = publisher
        .publish(&welcome_request("ada@example.com"))
        .await
        .unwrap();

    assert_eq!(receipt, Receipt::Confirmed);
    let redelivered = testkit::eventually(Duration::from_secs(15), || async {
        store.calls.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(redelivered, "the request was not redelivered");
    consumer.stop().await;
    publisher.close().await;
    delete_topology(&config).await;
}

#[tokio::test]
async fn amqp_mail_status_events_reach_the_events_exchange_with_their_routing_key() {
    if !rabbitmq_is_reachable(
        "amqp_mail_status_events_reach_the_events_exchange_with_their_routing_key",
    )
    .await
    {
        return;
    }
    let config = isolated_amqp_config();
    let names = TopologyNames::of(&config);
    let connection = Connection::connect(RABBITMQ_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    transport::amqp::declare_topology(&channel, &names)
        .await
        .unwrap();
    let listener = format!("{}.listener", names.events_exchange);
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(listener.as_str().into(), options, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(
            listener.as_str().into(),
            names.events_exchange.as_str().into(),
            "mail.sent".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            listener.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    let events = AmqpEvents::start(&config);
    let payload =
        json!({"id": "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10", "status": "sent", "attempts": 1});
    events.publish("failed", &json!({"status": "failed"})).await;
    events.publish("sent", &payload).await;

    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("an event within 10 s")
        .expect("the consumer is open")
        .expect("a delivery");
    assert_eq!(delivery.routing_key.as_str(), "mail.sent");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&delivery.data).unwrap(),
        payload
    );
    let _ = connection.close(200, "done".into()).await;
    delete_topology(&config).await;
}

/// Keeps every request it is handed.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<MailRequest>>);

#[async_trait]
impl MailHandler for Recorder {
    async fn handle(&self, request: MailRequest, _: Origin) -> MailAnswer {
        let id = request.id;
        self.0.lock().unwrap().push(request);
        MailAnswer::accepted(id)
    }
}

/// The transport asks for 16 KiB frames (lapin's buffers are sized by them); a request larger
/// than one frame still goes through whole, and the broker reports the size it agreed to.
#[tokio::test]
async fn amqp_connections_use_small_frames_and_a_large_request_crosses_them_whole() {
    if !rabbitmq_is_reachable(
        "amqp_connections_use_small_frames_and_a_large_request_crosses_them_whole",
    )
    .await
    {
        return;
    }
    let config = isolated_amqp_config();
    let recorder = Arc::new(Recorder::default());
    let (consumer, publisher) = connected_pair(&config, recorder.clone()).await;
    let mut request = welcome_request("ada@example.com");
    request
        .vars
        .insert("note".into(), json!("é".repeat(20 * 1024)));
    assert!(serde_json::to_vec(&request).unwrap().len() > 40 * 1024);

    let receipt = publisher.publish(&request).await.unwrap();

    assert_eq!(receipt, Receipt::Confirmed);
    let consumed = testkit::eventually(Duration::from_secs(10), || async {
        !recorder.0.lock().unwrap().is_empty()
    })
    .await;
    assert!(consumed, "the large request was not consumed");
    assert_eq!(recorder.0.lock().unwrap()[0], request);

    let listed = tokio::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "frame_max",
            "client_properties",
        ])
        .output()
        .await
        .expect("rabbitmqctl runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    // The connection name the transport gives ("facteur publisher", …) is in the client
    // properties; connections the tests open with lapin directly have none.
    let ours: Vec<&str> = listed
        .lines()
        .filter(|line| line.contains("facteur "))
        .collect();
    assert!(!ours.is_empty(), "no facteur connection listed:\n{listed}");
    for line in ours {
        assert!(line.starts_with("16384\t"), "{line}");
    }
    consumer.stop().await;
    publisher.close().await;
    delete_topology(&config).await;
}
