//! The socket.io half of the AsyncAPI document: one channel per namespace, one message per
//! event (its `name` is the event's name) and per ack, and one operation per event, whose
//! `reply` is the ack. Operations are the mailer's: `receive` for what clients emit,
//! `send` for what the mailer emits.

mod blocks;
mod live;
mod service;

use super::Facts;
use super::blocks::Part;

/// The channels, operations and messages of both namespaces.
pub fn part(facts: &Facts) -> Part {
    let mut part = Part::default();
    service::namespace(&mut part);
    live::namespace(&mut part, facts.live_token);
    part
}
