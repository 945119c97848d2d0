//! Helpers shared by the transport's test binaries: reachability checks that skip loudly,
//! random AMQP names, and mail requests to publish.

#![allow(dead_code)] // each test binary uses its own subset

use domain::config::AmqpConfig;
use domain::{Locale, MailRequest, Recipient, Template};
use std::time::Duration;

/// Where the tests expect RabbitMQ.
pub const RABBITMQ_ADDR: &str = "127.0.0.1:5672";
/// The broker URL for [`RABBITMQ_ADDR`] with the default account.
pub const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Writes a line to stderr that libtest does not capture, so a skip or a summary is seen.
pub fn say(line: &str) {
    domain::test_support::report(line);
}

/// True when RabbitMQ accepts connections. Otherwise prints `SKIPPED <test>: …` and returns
/// false, or panics when `FACTEUR_REQUIRE_SERVICES=1`.
pub async fn rabbitmq_is_reachable(test: &str) -> bool {
    let reachable = matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(RABBITMQ_ADDR)
        )
        .await,
        Ok(Ok(_))
    );
    reachable
        || domain::test_support::skip_or_fail(
            test,
            &format!("RabbitMQ is not reachable at {RABBITMQ_ADDR}"),
        )
}

/// An AMQP configuration with names of its own, so tests never share a queue.
pub fn isolated_amqp_config() -> AmqpConfig {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    AmqpConfig {
        url: domain::Secret::new(RABBITMQ_URL),
        exchange: format!("test.{tag}"),
        queue: format!("test.{tag}.requests"),
    }
}

/// A valid `welcome` request for `email`, with a fresh id.
pub fn welcome_request(email: &str) -> MailRequest {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), "ada".into());
    MailRequest::new(
        Template::Welcome,
        Locale::Fr,
        Recipient {
            email: domain::Email::parse(email.to_string()).expect("a valid test address"),
            name: "Ada Lovelace".into(),
        },
        vars,
    )
    .expect("a valid test request")
}

/// Deletes the queues and exchanges of an isolated configuration (best effort).
pub async fn delete_topology(config: &AmqpConfig) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let names = transport::amqp::TopologyNames::of(config);
    let Ok(connection) =
        lapin::Connection::connect(RABBITMQ_URL, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
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
    }
    let _ = connection.close(200, "done".into()).await;
}
