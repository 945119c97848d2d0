//! The road between users and mailer: one [`Transport`] trait to publish mail requests, one
//! [`MailHandler`] trait to receive them, and two backends behind them.
//!
//! - [`socketio`]: the users service is a socket.io client of the mailer; answers come back
//!   as acks.
//! - [`amqp`]: both services talk to RabbitMQ; a publish counts once the broker confirms it,
//!   and the mailer consumes with manual acks.
//!
//! [`connect`] builds the backend that `transport.kind` names. Whatever the backend, a
//! publish returns only once the other side has taken responsibility for the request, and
//! every error says whether trying again can help.

mod publish;
pub mod socketio;

pub use publish::{LinkState, MailHandler, Origin, PublishError, Receipt, Transport};
