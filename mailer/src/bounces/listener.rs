//! The SMTP receiver of the bounce domain: it takes mail for `bounce+{id}@{domain}` only,
//! reads each message's report and hands it over with the ids it was addressed to.
//!
//! Plain SMTP without STARTTLS or AUTH: reports come from other servers' null sender, and
//! nothing received here is relayed. Every resource a client can make it hold is bounded: open
//! connections, recipients, line and message sizes, time per command and per connection.

mod command;
mod lines;
mod session;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::MailRequestId;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::report::Report;
use session::Session;

/// How long a connection refused for being one too many is given to read its 421.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long accepting pauses after an error (such as running out of file descriptors), so
/// that connections can close first.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What one client can make the receiver hold, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeLimits {
    /// The largest message, in bytes after dot-unstuffing, advertised as `SIZE`; a larger one
    /// is read to its end, dropped and answered 552.
    pub max_message_bytes: usize,
    /// Connections open at once; one more is answered 421 and closed.
    pub max_connections: usize,
    /// Recipients of one message; more are answered 452.
    pub max_recipients: usize,
    /// The longest wait for a command or a piece of a message before closing with 421.
    pub command_timeout: Duration,
    /// The longest a connection stays open.
    pub session_timeout: Duration,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            // A report returns at most the mail it is about (a few tens of KiB): 1 MiB is
            // ample, and bounds what 64 anonymous connections can make the receiver hold
            // (each buffers up to twice the limit) to about 128 MiB.
            max_message_bytes: 1024 * 1024,
            max_connections: 64,
            max_recipients: 50,
            command_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// One accepted message: handed over after its final `.` and before its 250.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The ids of its accepted recipients `bounce+{id}@{domain}`, each once, in order.
    pub ids: Vec<MailRequestId>,
    /// What the message reports; `Report::Other` too was accepted (and is the caller's to
    /// count).
    pub report: Report,
}

/// What every session shares.
struct Intake {
    domain: String,
    limits: IntakeLimits,
    inbound: mpsc::Sender<Inbound>,
}

/// Receives mail on `listener` for `bounce+{id}@{domain}` and sends each accepted message's
/// [`Inbound`] to `inbound`, waiting while that queue is full. Returns once `shutdown` has
/// completed and every connection has closed: connections still open are answered 421 at
/// their next wait.
pub async fn serve(
    listener: TcpListener,
    domain: String,
    limits: IntakeLimits,
    inbound: mpsc::Sender<Inbound>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let intake = Arc::new(Intake {
        domain,
        limits,
        inbound,
    });
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended {
                    tracing::error!(%error, "a bounce intake connection ended abnormally");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let session = Session::new(stream, Arc::clone(&intake), stopping.clone());
                        connections.spawn(async move {
                            session.run().await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        connections.spawn(refuse(stream, intake.domain.clone()));
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "the bounce intake could not accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// Answers a connection beyond the limit with 421 (RFC 5321 §3.1) and closes it.
async fn refuse(mut stream: TcpStream, domain: String) {
    let reply = format!("421 4.3.2 {domain} Too many connections, try again later\r\n");
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
