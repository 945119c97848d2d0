//! The users service: the REST API over user accounts, sessions and password resets, and the
//! transactional outbox that turns every change into a mail request for the mailer.
//!
//! - [`App`] ([`startup`]): build (database, migrations, bind) and run (HTTP and relay);
//! - `routes`: one module per route family, with the HTTP layers in `routes/mod.rs`;
//! - `outbox`: the outbox rows and the relay that publishes them through a
//!   [`transport::Transport`];
//! - `hashing`, `session`, `session_store`, `auth`: Argon2id, session tokens and their
//!   records, who may do what;
//! - `tokens`: the single-use tokens of mailed links (password resets, address proofs);
//! - `limits`: the rate limits of the open routes, and who the client is;
//! - `entities`, `migration`, `database`: the schema, identical on SQLite and PostgreSQL;
//! - `body_reader`: reads a JSON body field by field and reports every bad field at once;
//!   `user_request` is what a `POST /users` or `PATCH /users/{id}` body becomes, and
//!   `user_response` the user as every answer shows it (no password, no hash);
//! - `user_reader`: reads one user in place from an SQLite file.

mod auth;
mod body_reader;
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
mod session_store;
mod startup;
mod state;
mod tokens;
mod user_reader;
mod user_request;
mod user_response;
mod write_txn;

pub use migration::Migrator;
pub use outbox::Backlog;
pub use outbox::relay::{OutboxRelay, RelayError, RelayReport};
pub use startup::{App, RunError, StartupError};
