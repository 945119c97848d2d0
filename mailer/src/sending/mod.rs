//! Sending mails: where they go ([`MailSender`]: SMTP over a shared pool of lettre
//! connections (`smtp_pool`), or `.eml` files), the delivery loop that claims and hands work
//! to workers (`delivery`), one try of one mail (`attempt`), the message itself (`message`,
//! signed by `dkim` when `mailer.dkim` is set), and the batched writing and announcing of
//! outcomes (`outcomes`).

mod attempt;
mod deferred_writes;
mod delivery;
mod dkim;
mod message;
mod outcomes;
mod smtp_commands;
mod smtp_pool;

pub use attempt::DeliveryOptions;
pub(crate) use attempt::{DeliveryLine, delivery_line};
pub use delivery::{Deliveries, DeliveryContext};
pub use dkim::{DkimRecord, DkimSigner};
pub use message::Letterhead;
use message::build_message;
use smtp_pool::SmtpPool;

use domain::config::{SmtpConfig, SmtpTls};
use lettre::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use smtp_pool::PoolError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How one handoff failed, which decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// A 5xx: the server refused for good; the delivery fails at once.
    Permanent(String),
    /// 550, 551 or 553 at `RCPT TO`: the server says the address itself cannot be
    /// delivered to; the delivery fails at once and the address is suppressed.
    RecipientRefused(String),
    /// A 4xx, or no connection at all: the server did not take the mail; retry.
    Transient {
        /// One sentence.
        error: String,
        /// The `smtp_errors_total` class.
        class: &'static str,
    },
    /// The message could not be rendered or built (a template error, a value lettre
    /// refuses, a panic while building): nothing was handed over; the delivery fails at once.
    Unbuildable(String),
    /// Timed out or the connection dropped mid-conversation: the server may have taken
    /// the mail. Retry (a possible resend, recognisable by its Message-ID).
    Uncertain {
        /// One sentence.
        error: String,
        /// The `smtp_errors_total` class.
        class: &'static str,
    },
}

/// Where mails go.
#[derive(Clone)]
pub enum MailSender {
    /// A shared pool of SMTP connections.
    Smtp(Arc<SmtpPool>),
    /// `.eml` files in a directory, named by request id.
    Files(PathBuf),
}

/// Why the SMTP transport could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the SMTP settings for {host} cannot be used: {reason}")]
pub struct SmtpSetupError {
    host: String,
    reason: String,
}

impl MailSender {
    /// Builds the pooled SMTP transport of `smtp`, with `pool_size` connections at most.
    pub fn smtp(smtp: &SmtpConfig, pool_size: u32) -> Result<Self, SmtpSetupError> {
        let err = |reason: String| SmtpSetupError {
            host: smtp.host.clone(),
            reason,
        };
        let tls = match smtp.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(
                TlsParameters::new(smtp.host.clone()).map_err(|e| err(e.to_string()))?,
            ),
            SmtpTls::Tls => {
                Tls::Wrapper(TlsParameters::new(smtp.host.clone()).map_err(|e| err(e.to_string()))?)
            }
        };
        let credentials = match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        let tls_parameters = match tls {
            Tls::Required(p) | Tls::Wrapper(p) => Some(p),
            _ => None,
        };
        Ok(MailSender::Smtp(Arc::new(SmtpPool::new(
            smtp.host.clone(),
            smtp.port,
            smtp.tls,
            tls_parameters,
            credentials,
            usize::try_from(pool_size).unwrap_or(16),
        ))))
    }

    /// What `/health` shows under `smtp`: `ok` for SMTP (the pool connects on demand),
    /// `files` for `.eml` files.
    pub fn health_label(&self) -> &'static str {
        match self {
            MailSender::Smtp(_) => "ok",
            MailSender::Files(_) => "files",
        }
    }

    /// Hands `message` over once, within `timeout`; the SMTP server's reply to the end of
    /// the data when it took the mail (none for a `.eml` file).
    pub async fn send(
        &self,
        id: &str,
        message: Message,
        timeout: Duration,
    ) -> Result<Option<Response>, SendFailure> {
        match self {
            MailSender::Smtp(pool) => {
                let bytes = message.formatted();
                match tokio::time::timeout(timeout, pool.send(message.envelope(), &bytes)).await {
                    Ok(Ok(reply)) => Ok(Some(reply)),
                    Ok(Err(PoolError::Smtp(e))) => Err(classify(&e)),
                    Ok(Err(PoolError::Recipient(e))) => Err(classify_recipient(&e)),
                    Ok(Err(PoolError::Unsendable(error))) => Err(SendFailure::Permanent(error)),
                    Ok(Err(PoolError::Connect(error))) => Err(SendFailure::Transient {
                        error,
                        class: "connection",
                    }),
                    Err(_) => Err(SendFailure::Uncertain {
                        error: format!(
                            "the SMTP server did not answer within {} ms",
                            timeout.as_millis()
                        ),
                        class: "timeout",
                    }),
                }
            }
            MailSender::Files(dir) => write_eml(dir, id, &message.formatted())
                .await
                .map(|()| None),
        }
    }
}

/// The replies to `RCPT TO` that say the mailbox cannot be delivered to (RFC 5321 §4.2.2:
/// no such mailbox, not local, mailbox name not allowed). Others, such as 552 (over quota)
/// or 554, may be about this mail, not about the address.
const REFUSED_RECIPIENT: [u16; 3] = [550, 551, 553];

/// Sorts a refusal of `RCPT TO`.
fn classify_recipient(e: &lettre::transport::smtp::Error) -> SendFailure {
    match e.status().map(u16::from) {
        Some(code) if e.is_permanent() && REFUSED_RECIPIENT.contains(&code) => {
            SendFailure::RecipientRefused(format!("SMTP: {e}"))
        }
        _ => classify(e),
    }
}

/// Sorts a lettre error into what to do next.
fn classify(e: &lettre::transport::smtp::Error) -> SendFailure {
    let error = format!("SMTP: {e}");
    if e.is_permanent() {
        SendFailure::Permanent(error)
    } else if e.is_transient() {
        SendFailure::Transient {
            error,
            class: "transient",
        }
    } else if e.is_timeout() {
        SendFailure::Uncertain {
            error,
            class: "timeout",
        }
    } else if e.to_string().starts_with("Connection error") || e.is_tls() {
        // lettre has no `is_connection()`; its Display names the kind. A connect or TLS
        // failure happens before any mail data is sent, so the server has nothing.
        SendFailure::Transient {
            error,
            class: "connection",
        }
    } else {
        // Network errors mid-conversation: the final "." may have reached the server.
        SendFailure::Uncertain {
            error,
            class: "connection",
        }
    }
}

/// Writes `<dir>/<id>.eml` through a temporary file and a rename, so a reader never sees
/// half a mail and a second write of the same id replaces the first. Mails hold addresses
/// and reset links: the folder is created readable by its owner only (0700), each file too
/// (0600).
async fn write_eml(dir: &std::path::Path, id: &str, bytes: &[u8]) -> Result<(), SendFailure> {
    use tokio::io::AsyncWriteExt;
    let fail = |e: std::io::Error| SendFailure::Transient {
        error: format!("could not write the mail into {}: {e}", dir.display()),
        class: "connection",
    };
    let mut folder = tokio::fs::DirBuilder::new();
    folder.recursive(true);
    #[cfg(unix)]
    folder.mode(0o700);
    folder.create(dir).await.map_err(fail)?;
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp).await.map_err(fail)?;
    file.write_all(bytes).await.map_err(fail)?;
    file.flush().await.map_err(fail)?;
    drop(file);
    tokio::fs::rename(&tmp, dir.join(format!("{id}.eml")))
        .await
        .map_err(fail)
}
