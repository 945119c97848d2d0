//! nodemailer's `smtp-server` (tests/js/smtp-server.js) run by `node`: a real SMTP server
//! that offers PIPELINING, which the test kit's SMTP sink does not. Optionally behind a
//! relay that reports each piece the client wrote, so a test can see commands sent together.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The running server; stopped when dropped.
pub struct NodeSmtp {
    port: u16,
    lines: Arc<Mutex<Vec<Value>>>,
    _child: Child,
}

impl NodeSmtp {
    /// Starts the server with `flags` (tests/js/smtp-server.js: `--watch-client` puts the
    /// relay in front), or `None` when node or the npm package is missing and the test may
    /// skip.
    pub async fn start(test: &str, flags: &[&str]) -> Option<NodeSmtp> {
        let modules = testkit::node::modules(test, &["smtp-server"])?;
        let mut command = testkit::node::command(&modules, "tests/js/smtp-server.js");
        command.stdout(std::process::Stdio::piped());
        command.args(flags);
        let mut child = command.spawn().expect("node starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(std::time::Duration::from_secs(20), stdout.next_line())
            .await
            .expect("the SMTP server starts within 20 s")
            .expect("its output can be read")
            .expect("it prints where it listens");
        let listening: Value = serde_json::from_str(&first).expect("a JSON line");
        let port = listening["listening"].as_u64().expect("a port") as u16;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    kept.lock().expect("lock").push(value);
                }
            }
        });
        Some(NodeSmtp {
            port,
            lines,
            _child: child,
        })
    }

    /// The `mailer.smtp` section pointing at this server.
    pub fn config(&self) -> domain::config::SmtpConfig {
        domain::config::SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            username: None,
            password: None,
            tls: domain::config::SmtpTls::None,
        }
    }

    /// The mails received whose Message-ID names request `id`.
    pub fn mails_for(&self, id: &str) -> Vec<Value> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| {
                l["mail"]["message_id"]
                    .as_str()
                    .is_some_and(|m| m.contains(id))
            })
            .map(|l| l["mail"].clone())
            .collect()
    }

    /// The reply codes the server gave to each `RCPT TO` of `address`, in order.
    pub fn rcpt_replies(&self, address: &str) -> Vec<u64> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l["rcpt"].as_str() == Some(address))
            .filter_map(|l| l["code"].as_u64())
            .collect()
    }

    /// Each piece the client wrote, as the relay received it (with `--watch-client`).
    pub fn client_writes(&self) -> Vec<String> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|l| l["client_wrote"].as_str().map(str::to_string))
            .collect()
    }
}
