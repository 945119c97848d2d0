//! Facteur's whole-stack tests: the real `users` and `mailer` binaries, a real SMTP server,
//! the machine's RabbitMQ, on both transports; two mailers as one over a Redis of their own.

mod bad_input;
mod cluster;
mod config_errors;
mod deploy;
mod end_to_end;
mod erasure;
mod faults;
mod http_limits;
mod monitoring;
mod observability;
mod readme;
mod scale;
mod schemathesis;
mod shutdown;
mod support;
mod traces;
