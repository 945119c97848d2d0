//! What the workspace's tests stand on, once for every crate: the skip rule for outside
//! services ([`skip`]), free ports ([`ports`]), the `TEST_LOG` switch ([`log`]), polling with a
//! deadline ([`eventually`]), an SMTP sink ([`smtp`]), the AMQP teardown ([`amqp`]), the
//! Node.js peers ([`node`]) and an OTLP/HTTP receiver ([`otlp`]).
//!
//! It depends on no crate of the workspace, so that each of them can take it as a
//! dev-dependency without being built twice; it speaks in addresses, ports and names.

pub mod amqp;
pub mod log;
pub mod node;
pub mod otlp;
pub mod ports;
pub mod skip;
pub mod smtp;
mod wait;

pub use ports::free_port;
pub use skip::{report, services_required, skip_or_fail};
pub use wait::eventually;
