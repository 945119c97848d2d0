//! What the transport's test binaries share on top of the test kit: random AMQP names, their
//! teardown, and mail requests to publish.

#![allow(dead_code)] // each test binary uses its own subset

use domain::config::AmqpConfig;
use domain::{Locale, MailRequest, Recipient, Template};

/// True when RabbitMQ accepts connections; otherwise the kit's skip rule for `test`. Also
/// where the transport's tests turn `TEST_LOG` on.
pub async fn rabbitmq_is_reachable(test: &str) -> bool {
    testkit::log::init();
    testkit::skip::available(testkit::skip::RABBITMQ, test)
}

/// An AMQP configuration with names of its own, so tests never share a queue.
pub fn isolated_amqp_config() -> AmqpConfig {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    AmqpConfig {
        url: domain::Secret::new(testkit::amqp::RABBITMQ_URL),
        exchange: format!("test.{tag}"),
        queue: format!("test.{tag}.requests"),
    }
}

/// A valid `welcome` request for `email`, with a fresh id.
pub fn welcome_request(email: &str) -> MailRequest {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), "ada".into());
    MailRequest::new(
        Template::WELCOME,
        Locale::FR,
        Recipient {
            email: domain::Email::parse(email.to_string()).expect("a valid test address"),
            name: "Ada Lovelace".into(),
        },
        vars,
    )
    .expect("a valid test request")
}

/// Deletes the queues and exchanges of an isolated configuration.
pub async fn delete_topology(config: &AmqpConfig) {
    let names = transport::amqp::TopologyNames::of(config);
    testkit::amqp::delete_topology(&names.queues(), &names.exchanges()).await;
}
