//! The mailer's integration tests: one binary, one module per area. Every test spawns the
//! real mailer on port 0 with its own SQLite file, and talks to it over real sockets.

mod addresses;
mod amqp;
mod asyncapi;
mod backoff;
mod bounces;
mod catch_up;
mod cluster_link;
mod common;
mod delivery_log;
mod delivery_safety;
mod dkim;
mod live_page;
mod live_privacy;
mod operations;
mod rest;
mod retention;
mod smtp_delivery;
mod smtp_pipelining;
mod socketio_js;
mod socketio_limits;
mod store_backends;
mod suppression_key;
mod template_folder;
mod template_routes;
mod templates;
mod webhooks;
