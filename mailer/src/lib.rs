//! The mailer: turns mail requests into mails.
//!
//! One core (`mailer_core`) behind three doors: the socket.io `send-mail` event (`socket`),
//! `POST /mails` (`http`) and, with AMQP, the RabbitMQ consumer (`amqp`). Requests are stored
//! (`store`), rendered with the templates in force (`templates`: the built-in set and `mailer.templates_dir` over it) and sent over SMTP or written as
//! `.eml` files (`sending`); each change of status is announced (`events`) and counted
//! (`metrics`). Errors have one type ([`MailError`]). [`App`] puts it together;
//! `docs/mail-flow.md` follows one request through these modules. The event side is
//! described in AsyncAPI (`asyncapi`), from the same types as the REST side's OpenAPI.
//!
//! What is exported is what the binaries and the tests use.

mod amqp;
mod asyncapi;
mod bounces;
mod cluster;
mod error;
mod events;
mod http;
mod mailer_core;
mod metrics;
mod retention;
mod sending;
mod socket;
mod startup;
mod store;
mod templates;
mod webhooks;

pub use error::MailError;
pub use retention::RetentionOptions;
pub use sending::{Deliveries, DeliveryOptions};
pub use startup::{App, MailerOptions, RunError, StartupError};
pub use store::{
    Claimed, ConnectError, DeliveryRecord, DeliveryStatus, Finished, Inserted, Migrator,
    NewSuppression, PUBLIC_STATUSES, RetriedPage, RetryCursor, RetryFilter, Store, Suppression,
    SuppressionKeys, SuppressionPage, WriteCounters, connect as connect_store,
};
pub use templates::live::LiveTemplates;
pub use templates::{LoadError, RenderedMail, TemplateSource, Templates};
