//! The socket.io backend under test: an axum + socketioxide server in process, bound on
//! `127.0.0.1:0`, whose namespace `/` is built from the pieces `transport::socketio` gives
//! the mailer: the token handshake ([`check_service_auth`]) and the reading of a
//! `send-mail` payload ([`decode_send_mail`]), with the handler behind them.

use crate::backend::{Backend, Expected};
use crate::handler::RecordingHandler;
use crate::raw_socket::RawSocket;
use async_trait::async_trait;
use domain::config::SocketIoConfig;
use domain::{MailRequest, MailStatus, Secret};
use serde_json::json;
use socketioxide::SocketIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transport::socketio::SocketIoPublisher;
use transport::{Receipt, Transport};

/// The token of every test server.
pub const TOKEN: &str = "test-token";

/// A running in-process mailer stand-in.
struct Server {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Starts a socketioxide server on `listener` that hands `send-mail` to `handler`.
fn serve(listener: tokio::net::TcpListener, handler: Arc<RecordingHandler>) -> Server {
    let (layer, io) = SocketIo::builder().build_layer();
    crate::receiver::mount_receiver(&io, TOKEN, handler);
    let app = axum::Router::new().layer(layer);
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let closing = async move {
            let _ = stop.await;
            io.close().await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(closing)
            .await;
    });
    Server { shutdown, task }
}

pub struct SocketIoBackend {
    handler: Arc<RecordingHandler>,
    addr: SocketAddr,
    server: Option<Server>,
}

impl SocketIoBackend {
    fn config(addr: SocketAddr) -> SocketIoConfig {
        SocketIoConfig {
            url: format!("http://{addr}"),
            token: Secret::new(TOKEN),
        }
    }

    /// The address of the running server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[async_trait]
impl Backend for SocketIoBackend {
    const NAME: &'static str = "socketio";
    const QUEUES_WHILE_RECEIVER_IS_DOWN: bool = false;

    async fn start(_test: &str, handler: Arc<RecordingHandler>) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let server = Some(serve(listener, handler.clone()));
        Some(Self {
            handler,
            addr,
            server,
        })
    }

    async fn publisher(&self, timeout: Duration) -> Arc<dyn Transport> {
        let publisher = SocketIoPublisher::builder(&Self::config(self.addr))
            .ack_timeout(timeout)
            .start();
        assert!(
            publisher
                .wait_until_connected(Duration::from_secs(10))
                .await,
            "the socket.io publisher did not connect within 10 s"
        );
        Arc::new(publisher)
    }

    fn publisher_to_silent_peer(&self, addr: SocketAddr, timeout: Duration) -> Arc<dyn Transport> {
        Arc::new(
            SocketIoPublisher::builder(&Self::config(addr))
                .ack_timeout(timeout)
                .start(),
        )
    }

    async fn stop_receiver(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            let _ = server.task.await;
        }
    }

    async fn start_receiver(&mut self) {
        // The old socket may linger a moment in the kernel; retry the bind briefly.
        let listener = std::sync::Mutex::new(None);
        testkit::eventually(Duration::from_secs(5), || async {
            let bound = tokio::net::TcpListener::bind(self.addr).await.ok();
            let done = bound.is_some();
            *listener.lock().unwrap() = bound;
            done
        })
        .await;
        let listener = listener.into_inner().unwrap();
        let listener =
            listener.unwrap_or_else(|| panic!("could not bind {} again within 5 s", self.addr));
        self.server = Some(serve(listener, self.handler.clone()));
    }

    async fn assert_outcome(&self, request: &MailRequest, receipt: Receipt, expected: Expected) {
        let Receipt::Answered(answer) = receipt else {
            panic!("socket.io must answer, got {receipt:?}");
        };
        assert_eq!(answer.id, Some(request.id), "the answer names the request");
        let matches = matches!(
            (&answer.status, expected),
            (MailStatus::Accepted, Expected::Accepted)
                | (MailStatus::Duplicate, Expected::Duplicate)
                | (MailStatus::Rejected { .. }, Expected::Rejected)
        );
        assert!(matches, "expected {expected:?}, got {answer:?}");
    }

    async fn assert_all_settled(&mut self) {
        // Every publish got its ack above; nothing is held on the socket.io side.
    }

    async fn send_garbage_and_expect_rejections(&self) {
        let mut socket = RawSocket::connect(self.addr, json!({ "token": TOKEN }))
            .await
            .expect("the raw client is accepted");
        let garbage = [
            r#"["send-mail","not a request"]"#,
            r#"["send-mail",{"id":"not-a-uuid","template":"welcome"}]"#,
            r#"["send-mail",{"id":"0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10","template":"Not a name!","locale":"fr","to":{"email":"a@b.c"},"requested_at":"2026-11-27T08:00:00Z"}]"#,
            r#"["send-mail"]"#,
            r#"["send-mail",[1,2,3]]"#,
        ];
        for (ack_id, payload) in garbage.iter().enumerate() {
            let answer = socket.emit_with_ack(ack_id as u64, payload).await;
            assert_eq!(answer[0]["status"], "rejected", "{payload} got {answer}");
            assert!(
                answer[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{payload} got no error sentence: {answer}"
            );
        }
        // A frame that is not socket.io at all: the server may drop that one client.
        socket.send_raw("4this is not a socket.io packet{{{").await;
    }

    async fn cleanup(mut self) {
        self.stop_receiver().await;
    }
}
