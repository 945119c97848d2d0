//! The socket.io backend: the users service publishes as a socket.io client of the mailer,
//! which answers each `send-mail` with an ack.
//!
//! - [`service`]: what the mailer's server shares with the client: the `send-mail` event,
//!   the token handshake and the reading of a `send-mail` payload. The mailer registers the
//!   handlers of namespace `/` itself.
//! - [`SocketIoPublisher`]: the client side, a small engine.io v4 / socket.io v5 client on
//!   tokio-tungstenite (`docs/socketio-client.md` says why not rust_socketio); `link` keeps
//!   its connection and `packet` encodes and decodes the few packets it speaks.

mod link;
mod packet;
mod publisher;
pub mod service;

pub use publisher::{
    DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, SocketIoPublisher, SocketIoPublisherBuilder,
};
pub use service::{
    SEND_MAIL_EVENT, ServiceAuth, Unauthorized, check_service_auth, decode_send_mail,
};
