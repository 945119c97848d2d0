//! The bounce intake: where other servers' reports on the mails sent come back.
//!
//! Each mail's envelope sender is `bounce+{id}@{domain}` (VERP), so a report addressed there
//! names the delivery it is about without trusting anything inside it. `listener` is the SMTP
//! receiver for that domain: it takes mail for those addresses only and hands each message
//! over as an [`Inbound`], the recipients' ids with the message's [`Report`]. `report` reads
//! a message as a delivery status notification (RFC 3464), a complaint (RFC 5965) or neither.
//! `intake` applies what a report changes: a bounce, a complaint, a suppression.

mod intake;
mod listener;
mod report;

pub use intake::Intake;
pub use listener::{IntakeLimits, serve};
