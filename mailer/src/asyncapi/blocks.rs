//! The building blocks of the AsyncAPI document that both halves use: a part of the
//! document (channels, operations, messages), references, and messages.

use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Where both documents keep their schemas.
pub const SCHEMAS: &str = "#/components/schemas/";

/// Channels, operations and messages, keyed as they appear in the document.
#[derive(Default)]
pub struct Part {
    /// `channels`.
    pub channels: Map<String, Value>,
    /// `operations`.
    pub operations: Map<String, Value>,
    /// `components.messages`.
    pub messages: Map<String, Value>,
}

impl Part {
    pub(super) fn absorb(&mut self, other: Part) {
        self.channels.extend(other.channels);
        self.operations.extend(other.operations);
        self.messages.extend(other.messages);
    }
}

/// `{"$ref": "#/components/schemas/<name>"}`.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMAS}{name}")})
}

/// A reference to the message `name` of `components.messages`, as a channel lists it.
pub fn component_message(name: &str) -> Value {
    json!({"$ref": format!("#/components/messages/{name}")})
}

/// A reference to the message `key` of `channel`, as an operation or a reply lists it.
pub fn channel_message(channel: &str, key: &str) -> Value {
    json!({"$ref": format!("#/channels/{channel}/messages/{key}")})
}

/// A JSON message whose payload is `T`; `event` is the socket.io event's name when the
/// message is an event (an ack has none).
pub fn message<T: ToSchema>(event: Option<&str>, title: &str, summary: &str) -> Value {
    message_of(
        event,
        title,
        summary,
        schema_ref(&super::schemas::name::<T>()),
    )
}

/// A JSON message whose payload is the schema `payload`.
pub fn message_of(event: Option<&str>, title: &str, summary: &str, payload: Value) -> Value {
    let mut message = json!({
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    });
    if let Some(event) = event {
        message["name"] = event.into();
    }
    message
}
