//! A small pool of SMTP connections with `TCP_NODELAY` set, shared by every sender worker.
//!
//! lettre's own pool connects without `TCP_NODELAY`, and lettre writes a mail's data and
//! its final `\r\n.\r\n` in two writes before reading the reply. Nagle's algorithm then holds
//! the final dot until the server acknowledges the data, which a server with delayed ACKs
//! does after up to 40 ms, so each mail of a connection waits that long. This pool opens the
//! TCP connection itself, sets `TCP_NODELAY`, and hands the stream to lettre
//! (`connect_with_transport`), so SMTP speaks exactly as before, minus the stall. The stream is wrapped in [`DeferredWrites`],
//! so what lettre writes between two replies leaves in one write. Implicit TLS (`tls: tls`)
//! goes through lettre's own connect, without either.
//!
//! With a server that offers `PIPELINING` (RFC 2920), `MAIL FROM`, `RCPT TO` and `DATA` go
//! out together and their replies are read after, so a mail takes two round trips instead
//! of four. lettre does not pipeline, and it does not keep the `EHLO` keywords it does not
//! know, so the pool asks with a second `EHLO` once per connection, and pipelines through
//! lettre's public pieces (`smtp_commands`). The rest (TLS, authentication, reply parsing and
//! errors) stays lettre's.

use super::deferred_writes::DeferredWrites;
use super::smtp_commands::{plain_ascii, send_in_turn, send_pipelined};
use domain::config::SmtpTls;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Connections idle longer than this are dropped rather than reused.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Connections idle longer than this are checked with NOOP before reuse, so a connection the
/// server closed is not mistaken for a failed (maybe taken) mail.
const CHECK_AFTER: Duration = Duration::from_secs(1);

/// Where and how to connect.
pub struct SmtpPool {
    host: String,
    port: u16,
    tls: SmtpTls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    connect_timeout: Duration,
    hello: ClientId,
    max_idle: usize,
    /// A `std::sync::Mutex`: held only to push or pop, never across an await.
    idle: Mutex<Vec<Idle>>,
}

/// An open connection and what the server offered on it.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// The server's `EHLO` reply listed `PIPELINING`.
    pipelining: bool,
}

/// A connection waiting in the pool, and since when.
struct Idle {
    connection: Connection,
    since: Instant,
}

/// Why a send failed: before any data was handed over, or from lettre.
pub enum PoolError {
    /// Could not connect (nothing was sent).
    Connect(String),
    /// lettre's error, to classify.
    Smtp(lettre::transport::smtp::Error),
    /// The server refused a recipient at `RCPT TO` (lettre's error, to classify).
    Recipient(lettre::transport::smtp::Error),
    /// The server cannot take this mail as it is (nothing was sent).
    Unsendable(String),
}

impl SmtpPool {
    /// A pool for `host:port` keeping at most `max_idle` idle connections.
    pub fn new(
        host: String,
        port: u16,
        tls: SmtpTls,
        tls_parameters: Option<TlsParameters>,
        credentials: Option<Credentials>,
        max_idle: usize,
    ) -> Self {
        Self {
            host,
            port,
            tls,
            tls_parameters,
            credentials,
            connect_timeout: Duration::from_secs(10),
            hello: ClientId::default(),
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(waiting) = idle.pop() {
            if waiting.since.elapsed() < MAX_IDLE {
                return Some(waiting);
            }
            // Dropped without QUIT: the server times it out; nothing is pending on it.
        }
        None
    }

    async fn connect(&self) -> Result<Connection, PoolError> {
        let smtp = PoolError::Smtp;
        let mut conn = match self.tls {
            SmtpTls::Tls => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.connect_timeout),
                &self.hello,
                self.tls_parameters.clone(),
                None,
            )
            .await
            .map_err(smtp)?,
            SmtpTls::None | SmtpTls::Starttls => {
                let stream = tokio::time::timeout(
                    self.connect_timeout,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| {
                    PoolError::Connect(format!(
                        "connecting to {}:{} timed out",
                        self.host, self.port
                    ))
                })?
                .map_err(|e| {
                    PoolError::Connect(format!(
                        "could not connect to {}:{}: {e}",
                        self.host, self.port
                    ))
                })?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| PoolError::Connect(e.to_string()))?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(
                    Box::new(DeferredWrites::new(stream)),
                    &self.hello,
                )
                .await
                .map_err(smtp)?;
                if let (SmtpTls::Starttls, Some(params)) = (self.tls, &self.tls_parameters) {
                    conn.starttls(params.clone(), &self.hello)
                        .await
                        .map_err(smtp)?;
                }
                conn
            }
        };
        // Before AUTH: a new EHLO after it may make the server forget the authentication. A
        // server that refuses this second EHLO is spoken to one command at a time; a broken
        // connection shows at the next command.
        let pipelining = match conn.command(Ehlo::new(self.hello.clone())).await {
            Ok(ehlo) => ehlo.message().skip(1).any(|line| {
                line.split_ascii_whitespace()
                    .next()
                    .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
            }),
            Err(_) => false,
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(Connection {
            smtp: conn,
            pipelining,
        })
    }

    /// Sends one mail over a pooled (or new) connection, and pools the connection again
    /// when the exchange ended cleanly. The server's reply to the end of the data is the
    /// answer.
    pub async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<Response, PoolError> {
        let mut conn = match self.take_idle() {
            Some(mut idle) => {
                if idle.since.elapsed() >= CHECK_AFTER
                    && !idle.connection.smtp.test_connected().await
                {
                    self.connect().await?
                } else {
                    idle.connection
                }
            }
            None => self.connect().await?,
        };
        let sent = if conn.pipelining && plain_ascii(envelope, email) {
            send_pipelined(&mut conn.smtp, envelope, email).await
        } else {
            send_in_turn(&mut conn.smtp, envelope, email).await
        };
        match sent {
            Ok(reply) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.max_idle
                {
                    idle.push(Idle {
                        connection: conn,
                        since: Instant::now(),
                    });
                }
                Ok(reply)
            }
            Err(e) => {
                // After a refusal the transaction state is unknown (with pipelining, replies
                // may still be on their way): start afresh next time.
                conn.smtp.abort().await;
                Err(e)
            }
        }
    }
}
