//! The users service: the REST API over user accounts, sessions and password resets, and the
//! transactional outbox that turns every change into a mail request for the mailer.
//!
//! - [`App`] ([`startup`]): build (database, migrations, bind) and run (HTTP and relay);
//! - `routes`: one module per route family, with the HTTP layers in `routes/mod.rs`;
//! - `outbox`: the outbox rows and the relay that publishes them through a
//!   [`transport::Transport`];
//! - `hashing`, `session`, `auth`: Argon2id, session tokens, who may do what;
//! - `limits`: the rate limits of the open routes, and who the client is;
//! - `entities`, `migration`, `database`: the schema, identical on SQLite and PostgreSQL.

mod auth;
mod body_fields;
mod database;
mod entities;
mod error;
mod extract;
mod hashing;
mod limits;
mod mails;
mod metrics;
mod migration;
mod outbox;
mod routes;
mod session;
mod startup;
mod state;
mod user_body;
mod user_fields;
mod user_reader;
mod write_txn;

pub use outbox::Backlog;
pub use outbox::relay::{OutboxRelay, RelayError, RelayReport};
pub use startup::{App, RunError, StartupError};
