//! The few engine.io v4 / socket.io v5 text packets the publisher speaks, over websocket only.
//!
//! An engine.io packet is one digit (`0` open, `1` close, `2` ping, `3` pong, `4` message)
//! followed by its data; a socket.io packet rides in a message (`4`) as one digit (`0`
//! CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR), then for namespace `/`
//! directly the ack id and the JSON arguments: `42<id>["send-mail",{…}]`, `43<id>[{…}]`.

use serde_json::Value;
use std::time::Duration;

/// A packet received from the server, reduced to what the publisher acts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    /// Engine.io OPEN: the server's heartbeat settings.
    Open {
        /// How often the server pings.
        ping_interval: Duration,
        /// How long the server waits for a pong.
        ping_timeout: Duration,
    },
    /// Engine.io PING: answer with a pong.
    Ping,
    /// Engine.io CLOSE, or socket.io DISCONNECT of namespace `/`.
    Closed,
    /// Socket.io CONNECT of namespace `/`: the token was accepted.
    Connected,
    /// Socket.io CONNECT_ERROR: the server refused the namespace, with its message.
    ConnectRefused(String),
    /// Socket.io ACK on namespace `/` with its id and argument list.
    Ack {
        /// The ack id the publisher chose.
        id: u64,
        /// The ack's arguments (a JSON array).
        args: Value,
    },
    /// Anything else (pongs, events, other namespaces): ignored.
    Ignored,
}

/// The path and query of the engine.io websocket endpoint.
const ENGINE_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Turns the configured `http(s)://host:port` into the websocket URL of engine.io v4.
pub(crate) fn websocket_url(base: &str) -> Result<String, String> {
    let url =
        url::Url::parse(base).map_err(|e| format!("the mailer URL {base:?} is invalid: {e}"))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(format!(
                "the mailer URL must start with http:// or https://, not {other}://"
            ));
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("the mailer URL {base:?} has no host"))?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{ENGINE_PATH}"))
}

/// The CONNECT packet of namespace `/` carrying the token.
pub(crate) fn connect_packet(token: &str) -> String {
    format!("40{}", serde_json::json!({ "token": token }))
}

/// An EVENT packet asking for ack `id`: `42<id>["<event>",<data>]`.
pub(crate) fn event_packet(id: u64, event: &str, data: &Value) -> String {
    format!("42{id}{}", serde_json::json!([event, data]))
}

/// The engine.io PONG answering a ping.
pub(crate) const PONG: &str = "3";

/// Decodes one websocket text frame.
pub(crate) fn parse(text: &str) -> Result<Incoming, String> {
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => parse_open(&text[1..]),
        Some('1') => Ok(Incoming::Closed),
        Some('2') => Ok(Incoming::Ping),
        Some('4') => parse_socket_packet(&text[1..]),
        Some(_) => Ok(Incoming::Ignored),
        None => Err("an empty websocket frame".into()),
    }
}

fn parse_open(data: &str) -> Result<Incoming, String> {
    let value: Value = serde_json::from_str(data)
        .map_err(|e| format!("the engine.io OPEN packet is not JSON: {e}"))?;
    let millis = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("the engine.io OPEN packet has no numeric {key}"))
    };
    Ok(Incoming::Open {
        ping_interval: millis("pingInterval")?,
        ping_timeout: millis("pingTimeout")?,
    })
}

fn parse_socket_packet(packet: &str) -> Result<Incoming, String> {
    let mut chars = packet.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    // A packet for another namespace starts with `/name,`; the publisher only uses `/`.
    if rest.starts_with('/') {
        return Ok(Incoming::Ignored);
    }
    match kind {
        Some('0') => Ok(Incoming::Connected),
        Some('1') => Ok(Incoming::Closed),
        Some('4') => {
            let message = serde_json::from_str::<Value>(rest)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| rest.to_string());
            Ok(Incoming::ConnectRefused(message))
        }
        Some('3') => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let id = rest[..digits]
                .parse::<u64>()
                .map_err(|_| format!("an ACK packet without an id: {packet:?}"))?;
            let args: Value = serde_json::from_str(&rest[digits..])
                .map_err(|e| format!("ACK {id} carries invalid JSON: {e}"))?;
            Ok(Incoming::Ack { id, args })
        }
        _ => Ok(Incoming::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_become_engine_io_websocket_urls() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            websocket_url("https://mail.example.com/").unwrap(),
            "wss://mail.example.com/socket.io/?EIO=4&transport=websocket"
        );
        assert!(websocket_url("ftp://x").unwrap_err().contains("http://"));
        assert!(websocket_url("nope").is_err());
    }

    #[test]
    fn server_packets_are_decoded() {
        assert_eq!(
            parse(r#"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#).unwrap(),
            Incoming::Open {
                ping_interval: Duration::from_secs(25),
                ping_timeout: Duration::from_secs(20)
            }
        );
        assert_eq!(parse("2").unwrap(), Incoming::Ping);
        assert_eq!(parse(r#"40{"sid":"x"}"#).unwrap(), Incoming::Connected);
        assert_eq!(
            parse(r#"44{"message":"unauthorized"}"#).unwrap(),
            Incoming::ConnectRefused("unauthorized".into())
        );
        assert_eq!(
            parse(r#"4312[{"id":null,"status":"accepted"}]"#).unwrap(),
            Incoming::Ack {
                id: 12,
                args: json!([{"id": null, "status": "accepted"}])
            }
        );
        assert_eq!(parse("41").unwrap(), Incoming::Closed);
        assert_eq!(parse("1").unwrap(), Incoming::Closed);
        assert_eq!(parse(r#"42["mail-status",{}]"#).unwrap(), Incoming::Ignored);
        assert_eq!(parse(r#"40/live,{"sid":"x"}"#).unwrap(), Incoming::Ignored);
        assert!(parse("43[]").is_err());
        assert!(parse("437[oops").is_err());
        assert!(parse("").is_err());
        assert_eq!(parse("4é").unwrap(), Incoming::Ignored);
    }

    #[test]
    fn client_packets_are_encoded() {
        assert_eq!(connect_packet("t\"k"), r#"40{"token":"t\"k"}"#);
        assert_eq!(
            event_packet(7, "send-mail", &json!({"a": 1})),
            r#"427["send-mail",{"a":1}]"#
        );
    }
}
