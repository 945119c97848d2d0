//! A bare websocket client over a TCP stream, enough to open an engine.io session, send one
//! text frame of any size and watch the server close: many idle sockets cost one small task
//! each, and a frame larger than the server allows can be sent as it is.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An open websocket on `/socket.io/`, past its HTTP upgrade.
pub struct RawWs {
    /// The connection.
    pub tcp: TcpStream,
}

impl RawWs {
    /// Opens `ws://{addr}/socket.io/?EIO=4&transport=websocket`, with no `Origin`.
    pub async fn connect(addr: &str) -> std::io::Result<RawWs> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        // Read up to the end of the response headers, byte by byte so nothing after them
        // (the engine.io OPEN frame) is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await? == 0 {
                return Err(std::io::Error::other("closed during the upgrade"));
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(std::io::Error::other(format!(
                "no upgrade: {}",
                String::from_utf8_lossy(&head)
            )));
        }
        Ok(RawWs { tcp })
    }

    /// Sends one masked text frame holding `text` (the mask is all zeros, which leaves the
    /// bytes as they are; servers do not check its randomness).
    pub async fn send_text(&mut self, text: &[u8]) -> std::io::Result<()> {
        let mut frame = vec![0x81u8];
        match text.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text);
        self.tcp.write_all(&frame).await
    }

    /// Reads the next text frame the server sends (servers do not mask theirs), within 10 s.
    pub async fn read_text(&mut self) -> std::io::Result<String> {
        let read = async {
            let mut head = [0u8; 2];
            self.tcp.read_exact(&mut head).await?;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut n = [0u8; 2];
                    self.tcp.read_exact(&mut n).await?;
                    u16::from_be_bytes(n) as usize
                }
                127 => {
                    let mut n = [0u8; 8];
                    self.tcp.read_exact(&mut n).await?;
                    u64::from_be_bytes(n) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; len];
            self.tcp.read_exact(&mut payload).await?;
            if head[0] & 0x0f != 1 {
                return Err(std::io::Error::other(format!("not a text frame: {head:?}")));
            }
            String::from_utf8(payload).map_err(std::io::Error::other)
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .map_err(std::io::Error::other)?
    }

    /// Reads and drops what the server sends until it closes the connection or `within`
    /// passes; true when it closed.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = vec![0u8; 16 * 1024];
        tokio::time::timeout(within, async {
            loop {
                match self.tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    /// Joins `namespace` and holds the connection open for as long as the task lives,
    /// reading nothing: what the server sends waits in the socket's buffers, as it would
    /// for a browser on another machine, and costs this process nothing.
    pub async fn idle_in(mut self, namespace: &str) -> std::io::Result<()> {
        self.send_text(format!("40{namespace},").as_bytes()).await?;
        std::future::pending::<()>().await;
        Ok(())
    }
}
