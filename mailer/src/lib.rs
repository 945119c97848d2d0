//! The mailer: turns mail requests into mails.
//!
//! One core ([`core`]) behind three doors: the socket.io `send-mail` event ([`socket`]),
//! `POST /mails` ([`http`]) and, with AMQP, the RabbitMQ consumer ([`amqp`]). Requests are
//! stored in batches ([`store`]), rendered from embedded templates ([`templates`]) and sent
//! over SMTP or written as `.eml` files ([`sending`]); each change of status is announced
//! ([`events`]) and counted ([`metrics`]). [`App`] puts it together.

pub mod amqp;
pub mod core;
pub mod events;
pub mod http;
pub mod metrics;
pub mod sending;
pub mod socket;
mod startup;
pub mod store;
pub mod templates;

pub use startup::{App, MailerOptions, RunError, StartupError};
