//! The contract's RabbitMQ topology, declared the same way by every process.
//!
//! Declarations are idempotent only when identical (a different argument gets
//! `PRECONDITION_FAILED` and closes the channel), so publisher, consumer and events all call
//! [`declare_topology`] and nothing else declares.

use domain::config::AmqpConfig;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

/// The routing key of mail requests on the direct exchange.
pub const REQUEST_ROUTING_KEY: &str = "mail.request";
/// How many times a quorum queue delivers one message before dead-lettering it.
pub const DELIVERY_LIMIT: i32 = 20;

/// Every name of the topology, derived from `transport.amqp.exchange` and `.queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyNames {
    /// The durable direct exchange requests are published to (`facteur.mail`).
    pub exchange: String,
    /// The quorum queue the mailer consumes (`facteur.mail.requests`).
    pub queue: String,
    /// The durable fanout dead-letter exchange (`facteur.mail.dlx`).
    pub dead_letter_exchange: String,
    /// The durable queue bound to the dead-letter exchange (`facteur.mail.dead`).
    pub dead_queue: String,
    /// The topic exchange `mail-status` events go to (`facteur.mail.events`).
    pub events_exchange: String,
}

impl TopologyNames {
    /// The names for `config`; with the defaults these are exactly the contract's.
    pub fn of(config: &AmqpConfig) -> Self {
        let exchange = config.exchange.clone();
        Self {
            queue: config.queue.clone(),
            dead_letter_exchange: format!("{exchange}.dlx"),
            dead_queue: format!("{exchange}.dead"),
            events_exchange: format!("{exchange}.events"),
            exchange,
        }
    }

    /// The two queues, the request queue first.
    pub fn queues(&self) -> [&str; 2] {
        [&self.queue, &self.dead_queue]
    }

    /// The three exchanges, the request exchange first.
    pub fn exchanges(&self) -> [&str; 3] {
        [
            &self.exchange,
            &self.dead_letter_exchange,
            &self.events_exchange,
        ]
    }
}

/// Declares the exchanges, queues and bindings of the contract on `channel`.
pub async fn declare_topology(channel: &Channel, names: &TopologyNames) -> lapin::Result<()> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.dead_letter_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.events_exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            names.dead_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            names.dead_queue.as_str().into(),
            names.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            names.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            request_queue_arguments(names),
        )
        .await?;
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.exchange.as_str().into(),
            REQUEST_ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Exactly the three arguments of the contract, no more.
fn request_queue_arguments(names: &TopologyNames) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(DELIVERY_LIMIT),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_letter_exchange.as_str().into()),
    );
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_gives_the_contract_names() {
        let names = TopologyNames::of(&AmqpConfig::default());
        assert_eq!(names.exchange, "facteur.mail");
        assert_eq!(names.queue, "facteur.mail.requests");
        assert_eq!(names.dead_letter_exchange, "facteur.mail.dlx");
        assert_eq!(names.dead_queue, "facteur.mail.dead");
        assert_eq!(names.events_exchange, "facteur.mail.events");
        assert_eq!(request_queue_arguments(&names).inner().len(), 3);
    }
}
