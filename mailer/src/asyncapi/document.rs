//! Assembling the AsyncAPI 3.0.0 document: the info and servers, the two halves
//! ([`super::socketio`] and [`super::amqp`]), and the payload schemas of
//! [`super::schemas`], only those that a message reaches (directly or through other
//! schemas).

use super::Facts;
use super::blocks::SCHEMAS;
use domain::config::TransportKind;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The whole document for the mailer described by `facts`.
pub fn build(facts: &Facts) -> Value {
    let mut part = super::socketio::part(facts);
    part.absorb(super::amqp::part(facts));
    // The channels name a schema too (the CONNECT auth), besides the messages' payloads.
    let users = json!([part.channels, part.messages]);
    let schemas = reachable_schemas(&users, &super::schemas::payloads(&facts.templates));
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Facteur mailer events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The event side of the mailer: socket.io at `/socket.io/` (namespace `/` for services, `/live` for browsers) and, when `transport.kind` is `amqp`, RabbitMQ.\n\nsocket.io is described with the WebSockets binding: each namespace is a channel, each event a message whose `name` is the event's name, and the ack of an event is its operation's `reply`. Operations are the mailer's own: it *receives* what clients emit and *sends* what it emits.\n\nThe payload schemas are those of the REST API ([/openapi.json](/openapi.json), rendered at [/docs](/docs)).",
        },
        "defaultContentType": "application/json",
        "servers": servers(facts),
        "channels": part.channels,
        "operations": part.operations,
        "components": {
            "schemas": schemas,
            "messages": part.messages,
        },
    })
}

fn servers(facts: &Facts) -> Value {
    let in_use = match facts.transport {
        TransportKind::Amqp => {
            "This mailer runs with `transport.kind: amqp`: it consumes requests here."
        }
        TransportKind::Socketio => {
            "This mailer runs with `transport.kind: socketio`: it does not connect to RabbitMQ, and the topology below is what it would use."
        }
    };
    json!({
        "socketio": {
            "host": facts.listen.to_string(),
            "protocol": "ws",
            "pathname": "/socket.io/",
            "title": "socket.io (the mailer itself)",
            "description": "socket.io protocol 5 over engine.io 4, by websocket or HTTP long-polling, on the mailer's own port (`mailer.listen`; behind a proxy, use the proxy's address). A message or polling body over 128 KiB closes its connection; past `mailer.max_sockets` sessions a handshake gets 503.",
        },
        "rabbitmq": {
            "host": "{broker}",
            "protocol": "amqp",
            "protocolVersion": "0-9-1",
            "title": "RabbitMQ",
            "description": format!("The broker of `transport.amqp.url`. Its host is not published here: that URL is a secret, since it carries the password. {in_use}"),
            "variables": {"broker": {
                "description": "The host and port of `transport.amqp.url`.",
                "examples": ["127.0.0.1:5672"],
            }},
        },
    })
}

/// The schemas of `available` that `root` refers to, and those they refer to, and so on.
fn reachable_schemas(root: &Value, available: &Map<String, Value>) -> Map<String, Value> {
    let mut wanted = BTreeSet::new();
    collect_refs(root, &mut wanted);
    let mut taken = Map::new();
    while let Some(name) = wanted.pop_first() {
        if taken.contains_key(&name) {
            continue;
        }
        if let Some(schema) = available.get(&name) {
            collect_refs(schema, &mut wanted);
            taken.insert(name, schema.clone());
        }
    }
    taken
}

/// Adds the schema names of every `#/components/schemas/…` reference inside `value`.
fn collect_refs(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, item) in object {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix(SCHEMAS) {
                            names.insert(name.to_string());
                        }
                    }
                    _ => collect_refs(item, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, names)),
        _ => {}
    }
}
