//! A real SMTP server for the tests: `mailin-embedded`, in process, recording every mail it
//! accepts. It can be started late on a port chosen in advance, so that until then the
//! mailer's connections are refused.

use mailin_embedded::{Handler, Response, Server, response};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The raw message, headers and body.
    pub raw: String,
    /// The `Message-ID` header, without its angle brackets.
    pub message_id: String,
    /// The envelope recipients.
    pub to: Vec<String>,
}

impl ReceivedMail {
    /// The value of a header (first occurrence, unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }

    /// The `X-Facteur-Template` header the mailer sets, if any, else the subject.
    pub fn template_hint(&self) -> String {
        self.header("X-Facteur-Template")
            .or_else(|| self.header("Subject"))
            .unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct Recorder {
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    buffer: Vec<u8>,
    to: Vec<String>,
    /// How long the server takes over each mail before it answers the final `.`.
    delay: Duration,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.buffer.clear();
        self.to = to.to_vec();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buffer.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let raw = String::from_utf8_lossy(&self.buffer).into_owned();
        let mut mail = ReceivedMail {
            raw,
            message_id: String::new(),
            to: self.to.clone(),
        };
        mail.message_id = mail
            .header("Message-ID")
            .unwrap_or_default()
            .trim_matches(|c| c == '<' || c == '>')
            .to_string();
        self.mails.lock().expect("recorder lock").push(mail);
        response::OK
    }
}

/// The test SMTP server.
pub struct SmtpServer {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    started: bool,
    delay: Duration,
}

impl SmtpServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> Self {
        let mut server = Self::reserve();
        server.listen();
        server
    }

    /// Starts a server that takes `per_mail` over each mail before accepting it, as a busy
    /// relay does: a mailer's workers then stay busy long enough for others to share the work.
    pub fn start_slow(per_mail: Duration) -> Self {
        let mut server = Self::reserve();
        server.delay = per_mail;
        server.listen();
        server
    }

    /// Picks a free port but does not listen yet: connections are refused until [`listen`].
    pub fn reserve() -> Self {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = probe.local_addr().expect("local addr");
        drop(probe);
        Self {
            addr,
            mails: Arc::default(),
            started: false,
            delay: Duration::ZERO,
        }
    }

    /// Starts listening on the reserved port (once; the server then runs until the test ends).
    pub fn listen(&mut self) {
        if self.started {
            return;
        }
        let listener = TcpListener::bind(self.addr).expect("bind the reserved SMTP port");
        let recorder = Recorder {
            mails: self.mails.clone(),
            delay: self.delay,
            ..Recorder::default()
        };
        let mut server = Server::new(recorder);
        // mailin-embedded serves one connection per thread for as long as the client keeps it
        // open, and the mailer pools up to 16: fewer threads leave its connections waiting.
        server
            .with_name("smtp.test")
            .with_num_threads(32)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        self.started = true;
    }

    /// The port the mailer should use.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().expect("recorder lock").clone()
    }

    /// Waits until at least `count` mails arrived or `timeout` passed; returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= count || Instant::now() >= deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no new mail arrived for `quiet`, so late duplicates get a chance to show.
    pub async fn settle(&self, quiet: Duration) -> Vec<ReceivedMail> {
        let mut last = self.mails().len();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.mails().len();
            if now == last {
                return self.mails();
            }
            last = now;
        }
    }
}

/// How many mails arrived per Message-ID, and the ids that came more than once.
pub fn count_by_message_id(mails: &[ReceivedMail]) -> (HashMap<String, usize>, Vec<String>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for mail in mails {
        *counts.entry(mail.message_id.clone()).or_default() += 1;
    }
    let duplicates = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    (counts, duplicates)
}

impl ReceivedMail {
    /// Every text part of the message, decoded (base64 and quoted-printable), joined.
    pub fn decoded_text(&self) -> String {
        let mut out = String::new();
        // Each MIME part (or the whole message) is headers, a blank line, then a body.
        for part in self.raw.split("\r\n--") {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head_lower = head.to_ascii_lowercase();
            if head_lower.contains("content-type: multipart") {
                continue;
            }
            let body = body.split("\r\n--").next().unwrap_or(body);
            let decoded = if head_lower.contains("content-transfer-encoding: base64") {
                use base64::Engine as _;
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else if head_lower.contains("content-transfer-encoding: quoted-printable") {
                decode_quoted_printable(body)
            } else {
                body.to_string()
            };
            out.push_str(&decoded);
            out.push('\n');
        }
        out
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let bytes = body.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
