//! The socket.io backend: the users service publishes as a socket.io client of the mailer,
//! which answers each `send-mail` with an ack.
//!
//! - [`receiver`]: the server side, mounted by the mailer on its socketioxide instance.
//! - `publisher`: the client side, a [`SocketIoPublisher`] that implements [`crate::Transport`].

pub mod receiver;

pub use receiver::{SEND_MAIL_EVENT, ServiceAuth, mount_service_namespace};
