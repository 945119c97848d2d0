//! What both socket.io namespaces' descriptions are made of: the server, the engine.io
//! handshake, and the operations and messages of events.

use crate::asyncapi::blocks::{Part, channel_message, component_message};
use serde_json::{Map, Value, json};

/// Where the socket.io server is declared in the document.
pub const SERVER: &str = "#/servers/socketio";

/// The engine.io handshake that both namespaces share: WebSockets binding 0.1.0.
pub fn handshake_binding() -> Value {
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
pub fn receive(channel: &str, request: &str, replies: &[&str], summary: &str) -> Value {
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
pub fn emit(channel: &str, event: &str, summary: &str) -> Value {
    json!({
        "action": "send",
        "channel": {"$ref": format!("#/channels/{channel}")},
        "summary": summary,
        "messages": [channel_message(channel, event)],
    })
}

/// Puts `messages` in `components.messages` under `<prefix>_<key>`, and returns the
/// channel's `messages`, which refer to them by `key`.
pub fn add_messages<const N: usize>(
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
