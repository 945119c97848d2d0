//! Interop: the Rust socket.io publisher against the official Node.js `socket.io` v4 server
//! (`tests/js/mailer_stub.js`, run with the npm packages of the workspace's `tests/js`,
//! installed by `npm ci --prefix tests/js`).

use crate::common::welcome_request;
use domain::config::SocketIoConfig;
use domain::{MailStatus, Secret};
use futures_util::future::join_all;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use transport::socketio::SocketIoPublisher;
use transport::{LinkState, Receipt, Transport};

const TOKEN: &str = "node-token";

struct NodeMailer {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl NodeMailer {
    /// Starts the stub, or `None` (with a visible SKIPPED line) when node or the packages
    /// are missing.
    async fn start(test: &str) -> Option<Self> {
        let modules = testkit::node::modules(test, &["socket.io"])?;
        let spawned = testkit::node::command(&modules, "transport/tests/js/mailer_stub.js")
            .arg(TOKEN)
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                testkit::skip_or_fail(test, &format!("node could not be started: {e}"));
                return None;
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = Self::next_json(&mut lines).await;
        let port = first["port"]
            .as_u64()
            .expect("the stub prints its port first");
        Some(Self {
            _child: child,
            lines,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the node stub printed a line within 10 s")
            .expect("read the node stub's output")
            .expect("the node stub is running");
        serde_json::from_str(&line).expect("the node stub prints JSON")
    }

    async fn publisher(&self, token: &str) -> SocketIoPublisher {
        SocketIoPublisher::builder(&SocketIoConfig {
            url: self.url.clone(),
            token: Secret::new(token),
        })
        .ack_timeout(Duration::from_secs(10))
        .start()
    }
}

fn status(receipt: Receipt) -> MailStatus {
    match receipt {
        Receipt::Answered(answer) => answer.status,
        Receipt::Confirmed => panic!("socket.io answers, it does not just confirm"),
    }
}

#[tokio::test]
async fn interop_node_socketio_server_receives_requests_unchanged_and_answers_each_one() {
    let Some(mut node) = NodeMailer::start(
        "interop_node_socketio_server_receives_requests_unchanged_and_answers_each_one",
    )
    .await
    else {
        return;
    };
    let publisher = node.publisher(TOKEN).await;
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await,
        "connected to node"
    );
    let request = welcome_request("ada@example.com");

    let first = publisher.publish(&request).await.expect("publish");
    let received = NodeMailer::next_json(&mut node.lines).await;
    assert_eq!(
        received["received"],
        serde_json::to_value(&request).unwrap(),
        "unchanged"
    );
    assert_eq!(status(first), MailStatus::Accepted);
    assert_eq!(
        status(publisher.publish(&request).await.expect("again")),
        MailStatus::Duplicate
    );
    let refused = welcome_request("reject-me@example.com");
    assert!(matches!(
        status(publisher.publish(&refused).await.expect("reject")),
        MailStatus::Rejected { .. }
    ));

    let many: Vec<_> = (0..1000)
        .map(|i| welcome_request(&format!("n{i}@example.com")))
        .collect();
    let receipts = join_all(many.iter().map(|r| publisher.publish(r))).await;
    for (request, receipt) in many.iter().zip(receipts) {
        match receipt.expect("each of 1000 is answered") {
            Receipt::Answered(answer) => {
                assert_eq!(answer.id, Some(request.id));
                assert_eq!(answer.status, MailStatus::Accepted);
            }
            other => panic!("{other:?}"),
        }
    }
    publisher.close().await;
}

#[tokio::test]
async fn interop_node_socketio_server_refuses_a_wrong_token() {
    let Some(node) = NodeMailer::start("interop_node_socketio_server_refuses_a_wrong_token").await
    else {
        return;
    };
    let publisher = node.publisher("wrong").await;

    assert!(
        !publisher
            .wait_until_connected(Duration::from_millis(1500))
            .await
    );
    assert_eq!(publisher.state(), LinkState::Disconnected);
    let outcome = publisher.publish(&welcome_request("ada@example.com")).await;
    assert!(outcome.is_err_and(|e| e.is_retryable()));
}
