//! The mailer as the RabbitMQ consumer: a request published through the transport crate's
//! AMQP publisher is stored, sent once, and its `mail-status` appears on the events exchange.

use crate::common::{fast_options, mail_request, outbox_files, skip, spawn_with, test_config};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use transport::amqp::{AmqpPublisher, TopologyNames, declare_topology};
use transport::{Receipt, Transport};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn rabbitmq_reachable(test: &str) -> bool {
    let reachable = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect("127.0.0.1:5672"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !reachable {
        skip(test, "RabbitMQ is not reachable at 127.0.0.1:5672");
    }
    reachable
}

#[tokio::test]
async fn a_request_consumed_from_rabbitmq_is_sent_once_and_its_status_published() {
    let test = "a_request_consumed_from_rabbitmq_is_sent_once_and_its_status_published";
    if !rabbitmq_reachable(test).await {
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    config.transport.kind = domain::config::TransportKind::Amqp;
    config.transport.amqp.exchange = format!("facteur.test.{suffix}");
    config.transport.amqp.queue = format!("facteur.test.{suffix}.requests");
    let names = TopologyNames::of(&config.transport.amqp);
    let app = spawn_with(config.clone(), fast_options(), Arc::new(dir)).await;

    // An observer bound to the events exchange.
    let connection = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    declare_topology(&channel, &names).await.unwrap();
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
    let mut events = channel
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
    tokio::time::sleep(Duration::from_millis(300)).await;

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
    for queue in [&names.queue, &names.dead_queue] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [
        &names.exchange,
        &names.dead_letter_exchange,
        &names.events_exchange,
    ] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}
