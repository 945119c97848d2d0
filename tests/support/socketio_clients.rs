//! socket.io clients of the official JavaScript library (`socket.io-client` v4), held by one
//! `node` process (tests/js/cluster-clients.js) that takes commands on stdin and prints a
//! JSON line for everything its sockets receive. A test names each socket, connects it to
//! any mailer, emits through it, and reads back what each socket got.

use super::node_peers_available;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long the script lives at most, so a stuck test cannot leave it behind.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

/// The node process and every line it printed.
pub struct SocketClients {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    next_ref: u64,
}

impl SocketClients {
    /// Starts the script, or returns `None` (after the skip-or-fail rule) when node or the npm
    /// peers are missing.
    pub async fn start(test: &str) -> Option<SocketClients> {
        if !node_peers_available(test) {
            return None;
        }
        let js = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
        let mut child = Command::new("node")
            .arg(format!("{js}/cluster-clients.js"))
            .arg(SCRIPT_DEADLINE.as_millis().to_string())
            .env("NODE_PATH", format!("{js}/node_modules"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let kept = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let value = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| json!({"event": "unparsed", "line": line}));
                kept.lock().expect("lines lock").push(value);
            }
        });
        let mut err = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let kept = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut text = kept.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Some(SocketClients {
            child,
            stdin,
            lines,
            stderr,
            next_ref: 0,
        })
    }

    async fn command(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the script takes commands");
        self.stdin.flush().await.expect("the script takes commands");
    }

    /// Connects socket `name` to `url` + `namespace` with `auth`, and waits until it is
    /// connected (panics on a connect error or after 15 s).
    pub async fn connect(&mut self, name: &str, url: &str, namespace: &str, auth: Value) {
        self.command(
            json!({"op": "connect", "socket": name, "url": url, "ns": namespace, "auth": auth}),
        )
        .await;
        let line = self
            .wait_for_line(
                &format!("{name} connects to {url}{namespace}"),
                Duration::from_secs(15),
                |l| {
                    l["socket"] == name
                        && (l["event"] == "connect" || l["event"] == "connect_error")
                },
            )
            .await;
        assert_eq!(line["event"], "connect", "{name} could not connect: {line}");
    }

    /// Emits `event` with `payload` through socket `name` without waiting; returns the
    /// reference under which its ack will be printed.
    pub async fn emit(&mut self, name: &str, event: &str, payload: Value) -> String {
        self.next_ref += 1;
        let reference = format!("{name}#{}", self.next_ref);
        self.command(json!({"op": "emit", "socket": name, "event": event, "payload": payload, "ref": reference}))
            .await;
        reference
    }

    /// Waits (up to `timeout`) for the ack of `reference`; panics on an ack timeout.
    pub async fn ack(&self, reference: &str, timeout: Duration) -> Value {
        let line = self
            .wait_for_line(&format!("the ack of {reference}"), timeout, |l| {
                l["ref"] == reference && (l["event"] == "ack" || l["event"] == "ack_timeout")
            })
            .await;
        assert_eq!(line["event"], "ack", "no ack for {reference}: {line}");
        line["ack"].clone()
    }

    /// Emits and waits up to 30 s for the ack.
    pub async fn emit_with_ack(&mut self, name: &str, event: &str, payload: Value) -> Value {
        let reference = self.emit(name, event, payload).await;
        self.ack(&reference, Duration::from_secs(35)).await
    }

    /// Closes socket `name` (the client's own disconnect).
    pub async fn close(&mut self, name: &str) {
        self.command(json!({"op": "close", "socket": name})).await;
        self.wait_for_line(&format!("{name} closes"), Duration::from_secs(10), |l| {
            l["socket"] == name && l["event"] == "closed"
        })
        .await;
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// The payloads of every `event` socket `name` received, in order.
    pub fn received(&self, name: &str, event: &str) -> Vec<Value> {
        self.lines
            .lock()
            .expect("lines lock")
            .iter()
            .filter(|l| l["socket"] == name && l["event"] == event)
            .map(|l| l["payload"].clone())
            .collect()
    }

    /// How many times socket `name` got `event` for each (id, status) of its payloads.
    pub fn counts(&self, name: &str, event: &str) -> HashMap<(String, String), usize> {
        let mut counts = HashMap::new();
        for payload in self.received(name, event) {
            let key = (
                payload["id"].as_str().unwrap_or("").to_string(),
                payload["status"].as_str().unwrap_or("").to_string(),
            );
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// How many of `ids` socket `name` got `event` with `status` for.
    pub fn heard(&self, name: &str, event: &str, status: &str, ids: &[String]) -> usize {
        let got = self.counts(name, event);
        ids.iter()
            .filter(|id| got.contains_key(&((*id).clone(), status.to_string())))
            .count()
    }

    /// Fails when socket `name` got `event` more than once for any (id, status).
    pub fn assert_each_once(&self, name: &str, event: &str) {
        let twice: Vec<_> = self
            .counts(name, event)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(
            twice.is_empty(),
            "{name} got {event} more than once for {} (id, status): {twice:?}",
            twice.len()
        );
    }

    /// The first line that satisfies `matches`, waiting up to `timeout`; panics naming `what`
    /// and showing the script's last lines when none comes.
    pub async fn wait_for_line(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let find = || {
            self.lines
                .lock()
                .expect("lines lock")
                .iter()
                .find(|l| matches(l))
                .cloned()
        };
        let found = testkit::eventually(timeout, || std::future::ready(find().is_some())).await;
        assert!(found, "waited {timeout:?} for {what}; {}", self.tail());
        find().expect("the line found above")
    }

    /// Waits up to `timeout` until `done` holds over the lines so far; on timeout panics with
    /// what `progress` says about them.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&SocketClients) -> bool,
        progress: impl Fn(&SocketClients) -> String,
    ) {
        let reached = testkit::eventually(timeout, || std::future::ready(done(self))).await;
        assert!(
            reached,
            "waited {timeout:?} for {what}: {}; {}",
            progress(self),
            self.tail()
        );
    }

    /// Fails when a socket was disconnected without the test asking.
    pub fn assert_no_unasked_disconnect(&self) {
        let unasked: Vec<Value> = self
            .lines()
            .into_iter()
            .filter(|l| l["event"] == "disconnect" && l["reason"] != "io client disconnect")
            .collect();
        assert!(unasked.is_empty(), "sockets disconnected: {unasked:?}");
    }

    /// The script's last lines and its stderr, for failure messages.
    fn tail(&self) -> String {
        let lines = self.lines.lock().expect("lines lock");
        let start = lines.len().saturating_sub(8);
        let last: Vec<String> = lines[start..].iter().map(Value::to_string).collect();
        format!(
            "{} lines from cluster-clients.js, the last: {last:#?}; its stderr: {}",
            lines.len(),
            self.stderr.lock().expect("stderr lock")
        )
    }

    /// Closes every socket and waits for the script to end.
    pub async fn exit(mut self) {
        self.command(json!({"op": "exit"})).await;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("cluster-clients.js ends within 10 s of exit")
            .expect("its status");
        assert!(
            status.success(),
            "cluster-clients.js: {status}; {}",
            self.tail()
        );
    }
}
