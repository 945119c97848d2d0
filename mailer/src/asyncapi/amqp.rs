//! The AMQP half of the AsyncAPI document, with AMQP binding 0.3.0: a channel per routing key
//! (on its exchange) and per queue, named as `transport::amqp::topology` declares them for
//! this mailer's `transport.amqp`. The binding has no field for queue arguments or for
//! queue-to-exchange bindings, so those are given as `x-arguments` and `x-bound-to`, with
//! the values the topology declares.

use super::Facts;
use super::blocks::{Part, channel_message, component_message, message};
use crate::events::MailStatusEvent;
use domain::MailRequest;
use serde_json::{Value, json};
use transport::amqp::topology::{DELIVERY_LIMIT, REQUEST_ROUTING_KEY};
use transport::amqp::{PREFETCH, TopologyNames};

const SERVER: &str = "#/servers/rabbitmq";
const BINDING_VERSION: &str = "0.3.0";

/// The channels, operations and messages of the RabbitMQ topology.
pub fn part(facts: &Facts) -> Part {
    let names = &facts.topology;
    let mut part = Part::default();
    part.messages.insert(
        "amqp_mailRequest".into(),
        message::<MailRequest>(None, "mail request", "A persistent message (`delivery_mode` 2), `content_type: application/json`, `message_id` = the request id, published by the users service with publisher confirms."),
    );
    part.messages.insert(
        "amqp_mailStatus".into(),
        message::<MailStatusEvent>(
            None,
            "mail-status",
            "The `mail-status` payload of socket.io, as `content_type: application/json`.",
        ),
    );
    part.messages.insert(
        "amqp_deadLetter".into(),
        json!({
            "title": "dead letter",
            "summary": "A message the mailer rejected (not a valid mail request), or one delivered more than the delivery limit, as it was published, with RabbitMQ's `x-death` header.",
        }),
    );
    let channels = [
        (
            "mailRequests",
            routing_key_channel(
                REQUEST_ROUTING_KEY,
                &names.exchange,
                "direct",
                "Mail requests, published by the users service to the direct exchange.",
                "amqp_mailRequest",
            ),
        ),
        (
            "mailRequestQueue",
            queue_channel(
                &names.queue,
                "The quorum queue the mailer consumes (replicated when RabbitMQ runs as a cluster).",
                Some(request_queue_arguments(names)),
                (&names.exchange, REQUEST_ROUTING_KEY),
                "amqp_mailRequest",
            ),
        ),
        (
            "deadLetters",
            routing_key_channel(
                "",
                &names.dead_letter_exchange,
                "fanout",
                "The dead-letter exchange of the request queue: it takes every message, whatever its routing key.",
                "amqp_deadLetter",
            ),
        ),
        (
            "deadQueue",
            queue_channel(
                &names.dead_queue,
                "Where dead letters wait for an operator.",
                None,
                (&names.dead_letter_exchange, ""),
                "amqp_deadLetter",
            ),
        ),
        ("mailStatusEvents", status_channel(names)),
    ];
    for (key, channel) in channels {
        part.channels.insert(key.into(), channel);
    }
    part.operations.insert(
        "consumeMailRequests".into(),
        json!({
            "action": "receive",
            "channel": {"$ref": "#/channels/mailRequestQueue"},
            "summary": "The mailer consumes the request queue with manual acks.",
            "description": format!("At most {PREFETCH} deliveries unacked at once (the prefetch). A delivery is acked once its request is durably stored or found duplicate; one that is not a valid request is rejected without requeue and lands in `{dead}`; one the store cannot take right now is retried in place, held unacked, and requeued only when the consumer's connection ends. Every process declares this topology identically at start.", dead = names.dead_queue),
            "messages": [channel_message("mailRequestQueue", "mailRequest")],
            "bindings": {"amqp": {"ack": true, "bindingVersion": BINDING_VERSION}},
        }),
    );
    part.operations.insert(
        "publishMailStatus".into(),
        json!({
            "action": "send",
            "channel": {"$ref": "#/channels/mailStatusEvents"},
            "summary": "Each `mail-status` is also published here, best effort.",
            "description": "Transient messages, published through a bounded queue: when the broker is away or slow, events are dropped (and logged) rather than delaying a delivery. The delivery store stays the source of truth.",
            "messages": [channel_message("mailStatusEvents", "mailStatus")],
            "bindings": {"amqp": {"deliveryMode": 1, "mandatory": false, "bindingVersion": BINDING_VERSION}},
        }),
    );
    part
}

/// The three arguments the request queue is declared with, no more.
fn request_queue_arguments(names: &TopologyNames) -> Value {
    json!({
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": names.dead_letter_exchange,
    })
}

fn exchange(name: &str, kind: &str) -> Value {
    json!({"name": name, "type": kind, "durable": true, "autoDelete": false})
}

fn routing_key_channel(
    key: &str,
    exchange_name: &str,
    kind: &str,
    description: &str,
    msg: &str,
) -> Value {
    let message_key = msg.trim_start_matches("amqp_");
    json!({
        "address": if key.is_empty() { Value::Null } else { key.into() },
        "title": format!("{exchange_name} ({kind} exchange)"),
        "description": description,
        "servers": [{"$ref": SERVER}],
        "messages": {message_key: component_message(msg)},
        "bindings": {"amqp": {
            "is": "routingKey",
            "exchange": exchange(exchange_name, kind),
            "bindingVersion": BINDING_VERSION,
        }},
    })
}

fn queue_channel(
    name: &str,
    description: &str,
    arguments: Option<Value>,
    (bound_exchange, routing_key): (&str, &str),
    msg: &str,
) -> Value {
    let message_key = msg.trim_start_matches("amqp_");
    let mut binding = json!({
        "is": "queue",
        "queue": {"name": name, "durable": true, "exclusive": false, "autoDelete": false},
        "x-bound-to": {"exchange": bound_exchange, "routingKey": routing_key},
        "bindingVersion": BINDING_VERSION,
    });
    if let Some(arguments) = arguments {
        binding["x-arguments"] = arguments;
    }
    json!({
        "address": name,
        "title": format!("{name} (queue)"),
        "description": description,
        "servers": [{"$ref": SERVER}],
        "messages": {message_key: component_message(msg)},
        "bindings": {"amqp": binding},
    })
}

/// `mail.{status}` on the events exchange: one routing key per public status.
fn status_channel(names: &TopologyNames) -> Value {
    json!({
        "address": "mail.{status}",
        "title": format!("{} (topic exchange)", names.events_exchange),
        "description": "Every `mail-status`, with routing key `mail.<status>`: bind a queue with `mail.*`, or `mail.failed` for failures only.",
        "servers": [{"$ref": SERVER}],
        "parameters": {"status": {
            "enum": ["queued", "sent", "retrying", "failed", "cancelled", "suppressed", "bounced", "complained"],
            "description": "The new status (`queued` after a retry).",
        }},
        "messages": {"mailStatus": component_message("amqp_mailStatus")},
        "bindings": {"amqp": {
            "is": "routingKey",
            "exchange": exchange(&names.events_exchange, "topic"),
            "bindingVersion": BINDING_VERSION,
        }},
    })
}
