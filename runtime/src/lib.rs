//! What every Facteur process runs on, whichever transport carries its mail requests.
//!
//! - [`http_server`]: the HTTP loop both services serve their routers with (header, body and
//!   idle timeouts, a connection cap and a per-client cap, which `axum::serve` lacks), and the
//!   Content-Security-Policy of their API docs pages.
//! - [`client_addr`]: a client address as the per-client limits count it, one spelling
//!   however the socket gives it.
//! - [`telemetry`]: the logs and traces of every process, the OTLP export, and the trace
//!   context a mail request carries from one service to the next.
//! - [`signal::shutdown_signal`]: the Ctrl-C or SIGTERM every binary stops on.
//! - [`backoff`]: the exponential backoff with jitter of every retry loop.
//!
//! None of these is about the road between the services: the users service, the mailer and
//! the launcher that runs both need them with either transport, and the transport itself
//! needs two of them (backoff for its reconnect loops, trace context for AMQP headers). So
//! they sit below it, in a crate of their own that depends on `domain` (the configuration)
//! and on nothing else of Facteur's.

pub mod backoff;
pub mod client_addr;
pub mod http_server;
pub mod signal;
pub mod telemetry;
