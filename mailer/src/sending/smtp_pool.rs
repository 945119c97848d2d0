//! A small pool of SMTP connections with `TCP_NODELAY` set, shared by every sender worker.
//!
//! lettre's own pool connects without `TCP_NODELAY`, and lettre writes a mail's data and
//! its final `\r\n.\r\n` in two writes before reading the reply. Nagle's algorithm then holds
//! the final dot until the server acknowledges the data, which a server with delayed ACKs
//! does after up to 40 ms: measured against a local server, that capped the mailer at
//! about 340 mails/s with 16 workers. This pool opens the TCP connection itself, sets
//! `TCP_NODELAY`, and hands the stream to lettre (`connect_with_transport`), so SMTP
//! speaks exactly as before, minus the stall. The stream is wrapped in [`DeferredWrites`],
//! so what lettre writes between two replies leaves in one write. Implicit TLS (`tls: tls`)
//! goes through lettre's own connect, without either.

use super::deferred_writes::DeferredWrites;
use domain::config::SmtpTls;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
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
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// Why a send failed: before any data was handed over, or from lettre.
pub enum PoolError {
    /// Could not connect (nothing was sent).
    Connect(String),
    /// lettre's error, to classify.
    Smtp(lettre::transport::smtp::Error),
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

    fn take_idle(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE {
                return Some((conn, since));
            }
            // Dropped without QUIT: the server times it out; nothing is pending on it.
        }
        None
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, PoolError> {
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
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(conn)
    }

    /// Sends one mail over a pooled (or new) connection, and pools the connection again
    /// when the exchange ended cleanly.
    pub async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), PoolError> {
        let mut conn = match self.take_idle() {
            Some((mut conn, since)) => {
                if since.elapsed() >= CHECK_AFTER && !conn.test_connected().await {
                    self.connect().await?
                } else {
                    conn
                }
            }
            None => self.connect().await?,
        };
        match conn.send(envelope, email).await {
            Ok(_) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.max_idle
                {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            Err(e) => {
                // After a refusal the transaction state is unknown: start afresh next time.
                conn.abort().await;
                Err(PoolError::Smtp(e))
            }
        }
    }
}
