//! The AMQP backend: both services talk to RabbitMQ.
//!
//! - [`topology`]: the contract's exchanges, queues and bindings, declared by everyone alike.
//! - [`AmqpPublisher`]: the users side; a publish counts once the broker confirmed it.
//! - [`AmqpConsumer`]: the mailer side; manual acks, bounded prefetch, a supervisor.
//! - [`AmqpEvents`]: the mailer's best-effort `mail-status` events on `<exchange>.events`.
//! - `connection`: opening a connection and noticing when it dies.
//!
//! On AMQP the publisher's receipt is the broker's confirm ([`crate::Receipt::Confirmed`]);
//! the mailer's answer is what the consumer does with the message: `accepted` and
//! `duplicate` are acked, `rejected` is rejected without requeue and lands in the dead queue
//! `<exchange>.dead`; an `unavailable` request is retried in place with backoff (held unacked,
//! since every requeue counts against the quorum queue's `x-delivery-limit`) and requeued only
//! when the consumer stops or its connection fails.
//!
//! Recovery: each of the three keeps its connection under a supervisor task that notices a
//! failure (an error event, a closed status, a failed publish), drops the connection and
//! builds a new one — connection, channel, topology, consumer — forever, with backoff.
//! lapin's own `enable_auto_recover` is not turned on: a connection it recovers in the
//! background after the supervisor gave it up could re-register a consumer nobody reads
//! (holding up to [`PREFETCH`] messages unacked), and that recovery is young in lapin 4 (its
//! changelog lists fixes to it release after release). The broker-restart test
//! (`tests/broker_restart.rs`) checks the supervisor alone.

mod connection;
mod consumer;
mod events;
mod publisher;
pub mod topology;

pub use consumer::{AmqpConsumer, PREFETCH, UNAVAILABLE_RETRY_MAX, UNAVAILABLE_RETRY_MIN};
pub use events::AmqpEvents;
pub use publisher::{AmqpPublisher, DEFAULT_CONFIRM_TIMEOUT};
pub use topology::{TopologyNames, declare_topology};
