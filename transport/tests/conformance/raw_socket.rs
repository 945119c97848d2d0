//! A bare socket.io client written out packet by packet, to send what a well-behaved client
//! never would and to check the server's connect-time token check.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct RawSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawSocket {
    /// Opens a session and connects namespace `/` with `auth`; `Err` carries the
    /// CONNECT_ERROR packet when the server refuses.
    pub async fn connect(addr: SocketAddr, auth: Value) -> Result<Self, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connect");
        let mut socket = Self { ws };
        let open = socket.next_text().await;
        assert!(
            open.starts_with("0{"),
            "expected the engine.io OPEN, got {open}"
        );
        socket.send_raw(&format!("40{auth}")).await;
        let reply = socket.next_text().await;
        if reply.starts_with("40") {
            Ok(socket)
        } else {
            Err(reply)
        }
    }

    /// Emits `42<id><args>` and returns the arguments of the matching ack `43<id>[…]`.
    pub async fn emit_with_ack(&mut self, id: u64, args: &str) -> Value {
        self.send_raw(&format!("42{id}{args}")).await;
        let prefix = format!("43{id}");
        loop {
            let text = self.next_text().await;
            if let Some(rest) = text.strip_prefix(&prefix) {
                return serde_json::from_str(rest).expect("the ack carries JSON");
            }
        }
    }

    /// Sends one text frame as it is.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("websocket send");
    }

    /// The next text frame, answering engine.io pings on the way.
    async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("the server answered within 5 s")
                .expect("the websocket is open")
                .expect("a websocket frame");
            if let Message::Text(text) = frame {
                if text.as_str() == "2" {
                    self.send_raw("3").await;
                    continue;
                }
                return text.as_str().to_string();
            }
        }
    }
}
