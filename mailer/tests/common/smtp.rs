//! A real SMTP server in the test process (mailin-embedded), recording every mail and able
//! to answer 451 or 550 on purpose for the next N mails. It does not offer PIPELINING, so the
//! mailer speaks to it one command at a time.

use super::mime::ParsedMail;
use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// What the server answers to the next mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 451: try again later.
    Transient,
    /// 550 to `MAIL FROM`: never (about the sender, not the recipient).
    Permanent,
    /// 550 to `RCPT TO`: no such mailbox.
    NoMailbox,
    /// 550 to `RCPT TO` with this text after the code, where `{to}` stands for the
    /// recipient: a server that quotes addresses in its reply.
    NoMailboxSaying(&'static str),
}

#[derive(Default)]
struct Shared {
    mails: Vec<ParsedMail>,
    plan: VecDeque<Reply>,
}

/// A handle to the running server.
#[derive(Clone)]
pub struct TestSmtp {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Clone)]
struct Recorder {
    shared: Arc<Mutex<Shared>>,
    data: Vec<u8>,
    /// This mail's recipients are to be refused, and with which text if not the usual one.
    refuse_recipients: Option<Option<&'static str>>,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        let planned = self.shared.lock().expect("lock").plan.pop_front();
        self.refuse_recipients = match planned {
            Some(Reply::NoMailbox) => Some(None),
            Some(Reply::NoMailboxSaying(text)) => Some(Some(text)),
            _ => None,
        };
        match planned {
            Some(Reply::Transient) => INTERNAL_ERROR,
            Some(Reply::Permanent) => NO_MAILBOX,
            Some(Reply::NoMailbox | Reply::NoMailboxSaying(_)) | None => OK,
        }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match self.refuse_recipients {
            None => OK,
            Some(None) => NO_MAILBOX,
            Some(Some(text)) => Response::custom(550, text.replace("{to}", to)),
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        self.shared
            .lock()
            .expect("lock")
            .mails
            .push(ParsedMail::parse(&raw));
        OK
    }
}

impl TestSmtp {
    /// Starts a server on `127.0.0.1:0` in a background thread (it runs until the test
    /// process ends; mailin-embedded has no stop).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP port");
        let addr = listener.local_addr().expect("an address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let mut server = Server::new(Recorder {
            shared: shared.clone(),
            data: Vec::new(),
            refuse_recipients: None,
        });
        server
            .with_name("smtp.test")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { addr, shared }
    }

    /// Answers `reply` to the next `count` mails, then accepts again.
    pub fn fail_next(&self, count: usize, reply: Reply) {
        let mut shared = self.shared.lock().expect("lock");
        for _ in 0..count {
            shared.plan.push_back(reply);
        }
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<ParsedMail> {
        self.shared.lock().expect("lock").mails.clone()
    }

    /// The mails whose Message-ID names request `id`.
    pub fn mails_for(&self, id: &str) -> Vec<ParsedMail> {
        self.mails()
            .into_iter()
            .filter(|m| m.header("message-id").is_some_and(|v| v.contains(id)))
            .collect()
    }

    /// The `mailer.smtp` section pointing at this server.
    pub fn config(&self) -> domain::config::SmtpConfig {
        domain::config::SmtpConfig {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            username: None,
            password: None,
            tls: domain::config::SmtpTls::None,
        }
    }
}
