//! The socket.io backend: the users service publishes as a socket.io client of the mailer,
//! which answers each `send-mail` with an ack.
//!
//! - [`receiver`]: the server side, mounted by the mailer on its socketioxide instance.
//! - [`SocketIoPublisher`]: the client side, a small engine.io v4 / socket.io v5 client on
//!   tokio-tungstenite (`docs/socketio-client.md` says why not rust_socketio); `link` keeps
//!   its connection and `packet` encodes and decodes the few packets it speaks.

mod link;
mod packet;
mod publisher;
pub mod receiver;

pub use publisher::{
    DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, SocketIoPublisher, SocketIoPublisherBuilder,
};
pub use receiver::{SEND_MAIL_EVENT, ServiceAuth, mount_service_namespace};
