//! `transport.*`: which road mail requests take between users and mailer.

use super::scalar::string_or_scalar;
use crate::Secret;
use serde::Deserialize;
use std::fmt;

/// Which transport carries mail requests (`transport.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `socketio`, the default: the users service is a socket.io client of the mailer, and
    /// each request's answer comes back as its ack.
    #[default]
    Socketio,
    /// `amqp`: both services talk to RabbitMQ; a request counts as sent once the broker
    /// confirms it.
    Amqp,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Socketio => "socketio",
            TransportKind::Amqp => "amqp",
        })
    }
}

/// `transport.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// `transport.kind`: `socketio` (default) or `amqp`. Only the named side is used; the
    /// other section is read and checked all the same.
    pub kind: TransportKind,
    /// `transport.socketio.*`: the socket.io side, also read by the mailer with either kind
    /// (its REST API's token).
    pub socketio: SocketIoConfig,
    /// `transport.amqp.*`: the RabbitMQ side.
    pub amqp: AmqpConfig,
}

/// `transport.socketio.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketIoConfig {
    /// `transport.socketio.url`: the mailer's base URL as the users service reaches it,
    /// `http://` or `https://` (default `http://127.0.0.1:8080`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub url: String,
    /// `transport.socketio.token`: the shared secret service clients present at connect, and
    /// the mailer REST API's bearer token (default `change-me`, accepted on loopback only).
    pub token: Secret,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            token: Secret::new("change-me"),
        }
    }
}

/// `transport.amqp.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// `transport.amqp.url`: the broker, `amqp://` or `amqps://` (default
    /// `amqp://guest:guest@127.0.0.1:5672/%2f`). A secret, since it carries the password.
    pub url: Secret,
    /// `transport.amqp.exchange`: the durable direct exchange requests are published to
    /// (default `facteur.mail`); `<exchange>.dead` and `<exchange>.events` are named after it.
    #[serde(deserialize_with = "string_or_scalar")]
    pub exchange: String,
    /// `transport.amqp.queue`: the quorum queue the mailer consumes (default
    /// `facteur.mail.requests`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub queue: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: "facteur.mail".into(),
            queue: "facteur.mail.requests".into(),
        }
    }
}
