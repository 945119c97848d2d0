//! The AMQP backend under test: [`AmqpConsumer`] against the real RabbitMQ, with exchange
//! and queue names of its own per test, deleted at the end.

use crate::backend::{Backend, Expected};
use crate::common::{self, isolated_amqp_config};
use crate::handler::RecordingHandler;
use async_trait::async_trait;
use domain::config::AmqpConfig;
use domain::{MailRequest, Secret};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use transport::amqp::{AmqpConsumer, AmqpPublisher, TopologyNames};
use transport::{Receipt, Transport};

pub struct AmqpBackend {
    handler: Arc<RecordingHandler>,
    config: AmqpConfig,
    names: TopologyNames,
    consumer: Option<AmqpConsumer>,
    admin: (Connection, Channel),
    /// Message ids already taken off the dead queue, so checks in any order find them.
    dead: Mutex<HashSet<String>>,
}

impl AmqpBackend {
    async fn start_consumer(&mut self) {
        let consumer = AmqpConsumer::start(&self.config, self.handler.clone());
        assert!(
            consumer.wait_until_connected(Duration::from_secs(10)).await,
            "the AMQP consumer did not attach within 10 s"
        );
        self.consumer = Some(consumer);
    }

    /// Takes messages off the dead queue until one has `message_id`; false after 10 s.
    async fn dead_queue_holds(&self, message_id: &str) -> bool {
        let channel = &self.admin.1;
        testkit::eventually(Duration::from_secs(10), || async {
            if self.dead.lock().unwrap().contains(message_id) {
                return true;
            }
            let got = channel
                .basic_get(
                    self.names.dead_queue.as_str().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .expect("basic_get on the dead queue");
            if let Some(id) = got.and_then(|m| m.delivery.properties.message_id().clone()) {
                self.dead.lock().unwrap().insert(id.as_str().to_string());
            }
            false
        })
        .await
    }

    async fn publish_raw(&self, message_id: &str, body: &[u8]) {
        let confirm = self
            .admin
            .1
            .basic_publish(
                self.names.exchange.as_str().into(),
                transport::amqp::topology::REQUEST_ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_message_id(message_id.into()),
            )
            .await
            .expect("publish garbage");
        drop(confirm);
    }
}

#[async_trait]
impl Backend for AmqpBackend {
    const NAME: &'static str = "amqp";
    const QUEUES_WHILE_RECEIVER_IS_DOWN: bool = true;

    async fn start(test: &str, handler: Arc<RecordingHandler>) -> Option<Self> {
        if !common::rabbitmq_is_reachable(&format!("amqp::{test}")).await {
            return None;
        }
        let config = isolated_amqp_config();
        let names = TopologyNames::of(&config);
        let connection =
            Connection::connect(testkit::amqp::RABBITMQ_URL, ConnectionProperties::default())
                .await
                .expect("admin connection");
        let channel = connection.create_channel().await.expect("admin channel");
        transport::amqp::declare_topology(&channel, &names)
            .await
            .expect("declare the topology");
        let mut backend = Self {
            handler,
            config,
            names,
            consumer: None,
            admin: (connection, channel),
            dead: Mutex::new(HashSet::new()),
        };
        backend.start_consumer().await;
        Some(backend)
    }

    async fn publisher(&self, timeout: Duration) -> Arc<dyn Transport> {
        let publisher = AmqpPublisher::start_with_timeout(&self.config, timeout);
        assert!(
            publisher
                .wait_until_connected(Duration::from_secs(10))
                .await,
            "the AMQP publisher did not connect within 10 s"
        );
        Arc::new(publisher)
    }

    fn publisher_to_silent_peer(&self, addr: SocketAddr, timeout: Duration) -> Arc<dyn Transport> {
        let config = AmqpConfig {
            url: Secret::new(format!("amqp://guest:guest@{addr}/%2f")),
            ..self.config.clone()
        };
        Arc::new(AmqpPublisher::start_with_timeout(&config, timeout))
    }

    async fn stop_receiver(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            consumer.stop().await;
        }
    }

    async fn start_receiver(&mut self) {
        self.start_consumer().await;
    }

    async fn assert_outcome(&self, request: &MailRequest, receipt: Receipt, expected: Expected) {
        assert_eq!(
            receipt,
            Receipt::Confirmed,
            "AMQP receipts are broker confirms"
        );
        match expected {
            Expected::Accepted | Expected::Duplicate => {
                let stored = testkit::eventually(Duration::from_secs(10), || async {
                    self.handler.stored(request.id).is_some()
                })
                .await;
                assert!(stored, "{:?} never reached the handler", request.id);
            }
            Expected::Rejected => assert!(
                self.dead_queue_holds(&request.id.to_string()).await,
                "the rejected request {} is not in {}",
                request.id,
                self.names.dead_queue
            ),
        }
    }

    async fn assert_all_settled(&mut self) {
        // Stopping the consumer returns anything unacked to the queue, so an empty queue
        // afterwards means every delivery was settled.
        self.stop_receiver().await;
        let queue = self
            .admin
            .1
            .queue_declare(
                self.names.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare of the request queue");
        assert_eq!(
            queue.message_count(),
            0,
            "messages left in {}",
            self.names.queue
        );
        self.start_receiver().await;
    }

    async fn send_garbage_and_expect_rejections(&self) {
        let garbage: [(&str, &[u8]); 4] = [
            ("garbage-not-json", b"this is not JSON {{{"),
            ("garbage-not-a-request", br#"{"hello":"world"}"#),
            ("garbage-bad-template", br#"{"id":"0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10","template":"Not a name!","locale":"fr","to":{"email":"a@b.c"},"requested_at":"2026-11-27T08:00:00Z"}"#),
            ("garbage-binary", &[0xff, 0x00, 0xfe, 0x80]),
        ];
        for (id, body) in garbage {
            self.publish_raw(id, body).await;
        }
        for (id, _) in garbage {
            assert!(
                self.dead_queue_holds(id).await,
                "{id} did not reach the dead queue"
            );
        }
    }

    async fn cleanup(mut self) {
        self.stop_receiver().await;
        let names = &self.names;
        testkit::amqp::delete_topology(&names.queues(), &names.exchanges()).await;
        let _ = self.admin.0.close(200, "done".into()).await;
    }
}
