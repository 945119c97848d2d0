//! What the two ends of namespace `/` agree on, for the mailer's server to use: the event a
//! service client emits, the token handshake at connect, and how a `send-mail` payload is
//! read into a request or into the `rejected` answer acked in its place.
//!
//! The handlers themselves are registered by the mailer (`mailer/src/socket`), which owns
//! the namespace; these pieces are what it shares with [`super::SocketIoPublisher`].

use domain::mail::MAX_REQUEST_BYTES;
use domain::{MailAnswer, MailRequest, Secret};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Display;

/// The event a service client emits with a mail request, expecting an ack.
pub const SEND_MAIL_EVENT: &str = "send-mail";

/// The auth payload of a service client's CONNECT: `{"token": "…"}`.
#[derive(Deserialize)]
pub struct ServiceAuth {
    /// The shared secret of `transport.socketio.token`.
    pub token: String,
}

/// Why a connect was refused; its text is what the client sees in `connect_error`.
#[derive(Debug, thiserror::Error)]
#[error("unauthorized: a valid token is required in the connect auth payload")]
pub struct Unauthorized;

/// The token handshake: a CONNECT is let in when its auth payload could be read (`auth` is
/// `None` when it could not) and carries `token`.
pub fn check_service_auth(auth: Option<&ServiceAuth>, token: &Secret) -> Result<(), Unauthorized> {
    match auth {
        Some(auth) if token.matches(&auth.token) => Ok(()),
        _ => Err(Unauthorized),
    }
}

/// Reads the argument of a `send-mail` (`payload`, or why it could not be decoded) into the
/// request to store, or into the `rejected` answer to ack instead: a payload that is not
/// JSON, is larger than [`MAX_REQUEST_BYTES`] or is not a valid request. The rejection names
/// the request's id when the payload has a readable one.
pub fn decode_send_mail<E: Display>(payload: Result<Value, E>) -> Result<MailRequest, MailAnswer> {
    let value = payload.map_err(|e| {
        MailAnswer::rejected(
            None,
            format!("request: the payload could not be decoded: {e}"),
        )
    })?;
    let size = json_size(&value);
    if size > MAX_REQUEST_BYTES {
        return Err(MailAnswer::rejected(
            None,
            format!("request: is {size} bytes, over the limit of {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    MailAnswer::decode(value)
}

/// The bytes `value` takes as JSON, counted as it is written out: nothing is kept.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_configured_token_is_let_in() {
        let token = Secret::new("s3cret");
        let auth = |t: &str| ServiceAuth {
            token: t.to_string(),
        };
        assert!(check_service_auth(Some(&auth("s3cret")), &token).is_ok());
        assert!(check_service_auth(Some(&auth("wrong")), &token).is_err());
        assert!(check_service_auth(None, &token).is_err());
    }

    #[test]
    fn a_payload_that_is_not_a_request_becomes_a_rejection() {
        let undecodable: Result<Value, &str> = Err("expected a value");
        let Err(answer) = decode_send_mail(undecodable) else {
            panic!("an undecodable payload was read as a request");
        };
        assert_eq!(answer.id, None);
        let id = "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10";
        let Err(answer) = decode_send_mail::<&str>(Ok(json!({"id": id, "template": "nope"})))
        else {
            panic!("an invalid request was accepted");
        };
        assert_eq!(answer.id.map(|i| i.to_string()).as_deref(), Some(id));
        let huge = json!({"id": id, "pad": "x".repeat(MAX_REQUEST_BYTES)});
        let Err(answer) = decode_send_mail::<&str>(Ok(huge)) else {
            panic!("an oversize request was accepted");
        };
        assert_eq!(answer.id, None);
    }
}
