//! Just enough MIME reading to check what the mailer sent: headers (unfolded, RFC 2047
//! subjects decoded), and the text and HTML parts decoded from base64 or quoted-printable.

use base64::Engine;

/// One received mail.
#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// The raw message.
    pub raw: String,
    /// Top-level headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part.
    pub text: Option<String>,
    /// The decoded `text/html` part.
    pub html: Option<String>,
}

fn split_headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let raw_norm = raw;
    let (head, body) = raw_norm
        .split_once("\r\n\r\n")
        .or_else(|| raw_norm.split_once("\n\n"))
        .unwrap_or((raw_norm, ""));
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

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.replace("=\r\n", "").replace("=\n", "");
    let b = bytes.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'=', Some(v)) = (b[i], hex) {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_body(headers: &[(String, String)], body: &str) -> String {
    match get(headers, "content-transfer-encoding")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_string(),
    }
}

/// Decodes RFC 2047 words (`=?utf-8?b?...?=`) in a header value.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    for word in value.split(' ') {
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            let inner = &word[10..word.len() - 2];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(inner)
                .unwrap_or_default();
            out.push_str(&String::from_utf8_lossy(&bytes));
        } else if lower.starts_with("=?utf-8?q?") && word.ends_with("?=") {
            out.push_str(&decode_qp(&word[10..word.len() - 2].replace('_', " ")));
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

impl ParsedMail {
    /// Parses a raw message.
    pub fn parse(raw: &str) -> Self {
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
                let (ph, pb) = split_headers(part);
                let ct = get(&ph, "content-type").unwrap_or("").to_ascii_lowercase();
                if ct.starts_with("text/plain") {
                    text = Some(decode_body(&ph, pb));
                } else if ct.starts_with("text/html") {
                    html = Some(decode_body(&ph, pb));
                }
            }
        }
        Self {
            raw: raw.to_string(),
            headers,
            text,
            html,
        }
    }

    /// A header, decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        get(&self.headers, name).map(decode_words)
    }
}
