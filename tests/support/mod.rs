//! What the end-to-end tests stand on: the real services as child processes, a real SMTP
//! server, and the checks that skip or fail when RabbitMQ or PostgreSQL are away.

pub mod postgres;
pub mod services;
pub mod smtp;
pub mod stack;
