//! The users service's integration tests: the real app on port 0, on SQLite and again on
//! PostgreSQL (a fresh database per test), with a recording test double of the transport.
//!
//! Each scenario is an `async fn(Backend)`; `on_both_databases!` turns it into a `sqlite`
//! and a `postgres` test. PostgreSQL tests print `SKIPPED …` when the server is not
//! reachable, unless `FACTEUR_REQUIRE_SERVICES=1`, which makes them fail instead.

mod helpers;

mod access;
mod addresses;
mod bad_input;
mod connections;
mod email_verifications;
mod hardening;
mod hash_bound;
mod logs;
mod operations;
mod outbox;
mod password_resets;
mod rate_limits;
mod reauthentication;
mod reset_page;
mod sessions;
mod users_crud;
