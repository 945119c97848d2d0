//! What each backend provides to the suite: a receiver driving the [`RecordingHandler`],
//! publishers, and the checks whose shape differs between socket.io and AMQP.

use crate::handler::RecordingHandler;
use async_trait::async_trait;
use domain::MailRequest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use transport::{Receipt, Transport};

/// How a request should end on the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Accepted,
    Duplicate,
    Rejected,
}

/// One backend under test: a running receiver plus the means to publish to it.
#[async_trait]
pub trait Backend: Sized + Send + Sync + 'static {
    /// Prefix of the test names and of the summary line.
    const NAME: &'static str;
    /// True when a publish succeeds while the receiver is down (the broker holds it).
    const QUEUES_WHILE_RECEIVER_IS_DOWN: bool;

    /// Starts a receiver handing requests to `handler`; `None` when the test must skip.
    async fn start(test: &str, handler: Arc<RecordingHandler>) -> Option<Self>;

    /// A publisher connected to this receiver, each publish bounded by `timeout`.
    async fn publisher(&self, timeout: Duration) -> Arc<dyn Transport>;

    /// A publisher whose peer at `addr` accepts TCP connections and never says a word.
    fn publisher_to_silent_peer(&self, addr: SocketAddr, timeout: Duration) -> Arc<dyn Transport>;

    /// Stops the receiving side (the socket.io server, or the AMQP consumer).
    async fn stop_receiver(&mut self);

    /// Starts the receiving side again, on the same port or queue.
    async fn start_receiver(&mut self);

    /// Checks that `request`, published with `receipt`, ended as `expected`.
    async fn assert_outcome(&self, request: &MailRequest, receipt: Receipt, expected: Expected);

    /// Checks that nothing is left unsettled on the receiving side.
    async fn assert_all_settled(&mut self);

    /// Sends malformed input straight to the receiving side; checks each piece is rejected.
    async fn send_garbage_and_expect_rejections(&self);

    /// Releases what the backend created (server, queues, exchanges).
    async fn cleanup(self);
}

/// A TCP listener that accepts connections and never writes, to stand for a hung peer.
pub async fn silent_peer() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a silent peer");
    let addr = listener.local_addr().expect("the silent peer's address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}
