//! What the end-to-end tests stand on: the real services as child processes, a real SMTP
//! server, two mailers as one on a Redis of their own, socket.io clients of the official
//! library, and the checks that skip or fail when RabbitMQ or PostgreSQL are away.

pub mod greedy;
pub mod mailer_pair;
pub mod postgres;
pub mod redis;
pub mod services;
pub mod smtp;
pub mod socketio_clients;
pub mod stack;
