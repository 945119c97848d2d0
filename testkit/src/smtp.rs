//! An SMTP sink in the test process (mailin-embedded): it records every mail it accepts, can
//! refuse the next mails on purpose (451, or 550 to `MAIL FROM` or to `RCPT TO`), can take
//! its time over each mail like a busy relay, and can be started late on a port chosen in
//! advance, so that until then connections are refused. It does not offer PIPELINING (the
//! mailer's tests meet that in nodemailer's `smtp-server`, a Node.js peer).

use base64::Engine as _;
use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the sink answers to one of the next mails.
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
    mails: Vec<Mail>,
    plan: VecDeque<Reply>,
    listening: bool,
}

/// A handle to the sink; clones share it.
#[derive(Clone)]
pub struct SmtpSink {
    addr: SocketAddr,
    delay: Duration,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Clone)]
struct Recorder {
    shared: Arc<Mutex<Shared>>,
    delay: Duration,
    data: Vec<u8>,
    from: String,
    to: Vec<String>,
    /// This mail's recipients are to be refused, and with which text if not the usual one.
    refuse_recipients: Option<Option<&'static str>>,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        let planned = self.shared.lock().expect("sink lock").plan.pop_front();
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

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.data.clear();
        self.from = from.to_string();
        self.to = to.to_vec();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        let mail = Mail::parse(&raw, &self.from, &self.to);
        self.shared.lock().expect("sink lock").mails.push(mail);
        OK
    }
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub fn start() -> Self {
        Self::bound(Duration::ZERO)
    }

    /// Starts a sink that takes `per_mail` over each mail before accepting it, as a busy
    /// relay does: a mailer's workers then stay busy long enough for others to share the work.
    pub fn start_slow(per_mail: Duration) -> Self {
        Self::bound(per_mail)
    }

    /// A sink listening at once on a port the system picks: a port picked, let go and bound
    /// again could be taken in between by a test running beside this one.
    fn bound(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free SMTP port");
        let mut sink = Self::reserve();
        sink.addr = listener.local_addr().expect("a bound address");
        sink.delay = delay;
        sink.shared.lock().expect("sink lock").listening = true;
        sink.serve(listener);
        sink
    }

    /// Picks a free port but does not listen yet: connections are refused until [`listen`].
    ///
    /// [`listen`]: SmtpSink::listen
    pub fn reserve() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], crate::free_port())),
            delay: Duration::ZERO,
            shared: Arc::default(),
        }
    }

    /// Starts listening on the reserved port (once; the sink then runs in background threads
    /// until the test process ends: mailin-embedded has no stop).
    pub fn listen(&self) {
        {
            let mut shared = self.shared.lock().expect("sink lock");
            if shared.listening {
                return;
            }
            shared.listening = true;
        }
        let listener = TcpListener::bind(self.addr).expect("bind the reserved SMTP port");
        self.serve(listener);
    }

    /// Serves on `listener` in background threads.
    fn serve(&self, listener: TcpListener) {
        let mut server = Server::new(Recorder {
            shared: self.shared.clone(),
            delay: self.delay,
            data: Vec::new(),
            from: String::new(),
            to: Vec::new(),
            refuse_recipients: None,
        });
        // mailin-embedded serves one connection per thread for as long as the client keeps it
        // open, and a mailer pools up to 32, the cluster tests' two mailers 64: fewer threads
        // leave their connections waiting.
        server
            .with_name("smtp.test")
            .with_num_threads(72)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
    }

    /// Where it listens (or will).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers `reply` to the next `count` mails, then accepts again.
    pub fn fail_next(&self, count: usize, reply: Reply) {
        let mut shared = self.shared.lock().expect("sink lock");
        for _ in 0..count {
            shared.plan.push_back(reply);
        }
    }

    /// Every mail accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.lock().expect("sink lock").mails.clone()
    }

    /// How many mails were accepted so far.
    pub fn count(&self) -> usize {
        self.shared.lock().expect("sink lock").mails.len()
    }

    /// The mails whose Message-ID names request `id`.
    pub fn mails_for(&self, id: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.message_id.contains(id))
            .collect()
    }

    /// Waits until at least `count` mails arrived or `within` passed; returns them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Mail> {
        crate::eventually(within, || async { self.count() >= count }).await;
        self.mails()
    }
}

/// One mail as the sink accepted it: the envelope, the raw message, its top-level headers,
/// and its text and HTML parts decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The raw message, headers and body.
    pub raw: String,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The `Message-ID` header, without its angle brackets.
    pub message_id: String,
    /// Top-level headers, unfolded, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part.
    pub text: Option<String>,
    /// The decoded `text/html` part.
    pub html: Option<String>,
}

impl Mail {
    /// Reads a raw message received from `from` for `to`.
    pub fn parse(raw: &str, from: &str, to: &[String]) -> Self {
        let (headers, body) = split_headers(raw);
        let mut text = None;
        let mut html = None;
        let boundary = get(&headers, "content-type").and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
                .map(|b| b.trim_matches('"').to_string())
        });
        if let Some(boundary) = boundary {
            for part in body.split(&format!("--{boundary}")) {
                let part = part.trim_start_matches(['\r', '\n']);
                let (part_headers, part_body) = split_headers(part);
                let kind = get(&part_headers, "content-type")
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if kind.starts_with("text/plain") {
                    text = Some(decode_body(&part_headers, part_body));
                } else if kind.starts_with("text/html") {
                    html = Some(decode_body(&part_headers, part_body));
                }
            }
        }
        let message_id = get(&headers, "message-id")
            .unwrap_or("")
            .trim_matches(|c| c == '<' || c == '>')
            .to_string();
        Self {
            raw: raw.to_string(),
            from: from.to_string(),
            to: to.to_vec(),
            message_id,
            headers,
            text,
            html,
        }
    }

    /// A header's value (the first of that name, any case), RFC 2047 words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        get(&self.headers, &name.to_ascii_lowercase()).map(decode_words)
    }

    /// The `X-Facteur-Template` header the mailer sets, if any, else the subject.
    pub fn template_hint(&self) -> String {
        self.header("X-Facteur-Template")
            .or_else(|| self.header("Subject"))
            .unwrap_or_default()
    }

    /// Every text part of the message (or its one body), decoded and joined.
    pub fn decoded_text(&self) -> String {
        let mut out = String::new();
        // Each MIME part (or the whole message) is headers, a blank line, then a body.
        for part in self.raw.split("\r\n--") {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head = head.to_ascii_lowercase();
            if head.contains("content-type: multipart") {
                continue;
            }
            let body = body.split("\r\n--").next().unwrap_or(body);
            let decoded = if head.contains("content-transfer-encoding: base64") {
                decode_base64(body)
            } else if head.contains("content-transfer-encoding: quoted-printable") {
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

/// How many mails arrived per Message-ID, and the ids that came more than once.
pub fn count_by_message_id(mails: &[Mail]) -> (HashMap<String, usize>, Vec<String>) {
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

fn split_headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body)
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode_base64(body: &str) -> String {
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'=', Some(byte)) = (bytes[i], hex) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_body(headers: &[(String, String)], body: &str) -> String {
    match get(headers, "content-transfer-encoding")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("base64") => decode_base64(body),
        Some("quoted-printable") => decode_quoted_printable(body),
        _ => body.to_string(),
    }
}

/// Decodes RFC 2047 words (`=?utf-8?b?...?=`) in a header value.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    // RFC 2047 §6.2: white space between two encoded words is not part of the text; any
    // other white space is.
    let mut after_encoded = false;
    for (n, word) in value.split(' ').enumerate() {
        let lower = word.to_ascii_lowercase();
        let decoded = if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            Some(decode_base64(&word[10..word.len() - 2]))
        } else if lower.starts_with("=?utf-8?q?") && word.ends_with("?=") {
            Some(decode_quoted_printable(
                &word[10..word.len() - 2].replace('_', " "),
            ))
        } else {
            None
        };
        if n > 0 && !(after_encoded && decoded.is_some()) {
            out.push(' ');
        }
        after_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode_words;

    #[test]
    fn encoded_words_keep_the_spaces_around_them_but_not_between_them() {
        // "expédiée" and "für", as lettre encodes a word that is not ASCII.
        assert_eq!(
            decode_words("Commande A-7 =?utf-8?b?ZXhww6lkacOpZQ==?="),
            "Commande A-7 expédiée"
        );
        assert_eq!(decode_words("A-7 =?utf-8?b?ZsO8cg==?= Sie"), "A-7 für Sie");
        assert_eq!(
            decode_words("=?utf-8?b?ZsO8cg==?= =?utf-8?b?ZXhww6lkacOpZQ==?="),
            "fürexpédiée"
        );
    }
}
