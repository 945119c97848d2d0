//! The socket.io half of the AsyncAPI document: one channel per namespace, one message per
//! event (its `name` is the event's name) and per ack, and one operation per event, whose
//! `reply` is the ack. Operations are the mailer's: `receive` for what clients emit,
//! `send` for what the mailer emits.

mod live;
mod service;

use super::Facts;
use super::document::{Part, channel_message, component_message};
use serde_json::{Map, Value, json};

/// Where the socket.io server is declared in the document.
const SERVER: &str = "#/servers/socketio";

/// The channels, operations and messages of both namespaces.
pub fn part(facts: &Facts) -> Part {
    let mut part = Part::default();
    service::namespace(&mut part);
    live::namespace(&mut part, facts.live_token);
    part
}

/// The engine.io handshake that both namespaces share: WebSockets binding 0.1.0.
fn handshake_binding() -> Value {
    json!({"ws": {
        "method": "GET",
        "query": {
            "type": "object",
            "properties": {
                "EIO": {"type": "string", "const": "4", "description": "engine.io protocol 4 (socket.io protocol 5); other versions are refused."},
                "transport": {"type": "string", "enum": ["websocket", "polling"], "description": "A websocket at once, or HTTP long-polling (which may then upgrade)."},
                "sid": {"type": "string", "description": "The engine.io session, on polling requests and the upgrade."}
            },
            "required": ["EIO", "transport"]
        },
        "headers": {
            "type": "object",
            "properties": {
                "Origin": {"type": "string", "description": "Sent by browsers: it must be the mailer's own origin or one of `mailer.allowed_origins`, else the handshake gets 403 `forbidden_origin`. Services send none."}
            }
        },
        "bindingVersion": "0.1.0"
    }})
}

/// An event the mailer serves, acked with one of `replies`.
fn receive(channel: &str, request: &str, replies: &[&str], summary: &str) -> Value {
    let replies: Vec<Value> = replies
        .iter()
        .map(|m| channel_message(channel, m))
        .collect();
    json!({
        "action": "receive",
        "channel": {"$ref": format!("#/channels/{channel}")},
        "summary": summary,
        "messages": [channel_message(channel, request)],
        "reply": {
            "channel": {"$ref": format!("#/channels/{channel}")},
            "messages": replies,
        },
    })
}

/// An event the mailer emits, with no ack.
fn emit(channel: &str, event: &str, summary: &str) -> Value {
    json!({
        "action": "send",
        "channel": {"$ref": format!("#/channels/{channel}")},
        "summary": summary,
        "messages": [channel_message(channel, event)],
    })
}

/// Puts `messages` in `components.messages` under `<prefix>_<key>`, and returns the
/// channel's `messages`, which refer to them by `key`.
fn add_messages<const N: usize>(
    part: &mut Part,
    prefix: &str,
    messages: [(&str, Value); N],
) -> Map<String, Value> {
    let mut channel_messages = Map::new();
    for (key, body) in messages {
        let component = format!("{prefix}_{key}");
        channel_messages.insert(key.into(), component_message(&component));
        part.messages.insert(component, body);
    }
    channel_messages
}
