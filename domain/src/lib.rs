//! Facteur's shared vocabulary: the values that cross a boundary, validated when built.
//!
//! - [`user`]: `Login`, `Email`, `Password` — the account fields the users service accepts.
//! - [`mail`]: the mail request every transport carries and the answer it gets.
//! - [`config`]: the one configuration file both services and the launcher read.
//! - [`schema`]: what the mail request's derived JSON schema cannot say by itself.
//! - [`mask_email`] and [`mask_addresses_in`]: addresses shown without their local part.
//!
//! Nothing here is async: the crate is a dependency of every other one and stays light.

pub mod config;
mod invalid;
pub mod mail;
mod mask;
pub mod schema;
mod secret;
mod text;
pub mod user;

pub use invalid::Invalid;
pub use mail::{Locale, MailAnswer, MailRequest, MailRequestId, MailStatus, Recipient, Template};
pub use mask::{mask_addresses_in, mask_email};
pub use secret::{Secret, constant_time_eq};
pub use text::plain_text;
pub use user::{Email, Login, Password};
