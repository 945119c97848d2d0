//! A TCP stream that holds what is written until the peer's answer is awaited.
//!
//! SMTP without `PIPELINING` is strict turn-taking: the client writes, then reads the
//! server's reply, and nothing it wrote needs to be on the wire before it waits for that
//! reply. lettre writes a mail's data and its final `\r\n.\r\n` as two writes and flushes
//! after each. On loopback, every write is a `sendto` that also runs the receiver's side of
//! TCP and wakes the server's thread, charged to the mailer. Here a write only appends to a
//! buffer, a flush does nothing, and the buffer goes out in one write when the next read
//! starts (or when it grows past [`HIGH_WATER`]). Shutting down writes what is left first.

use lettre::transport::smtp::client::AsyncTokioStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Past this many held bytes, a write sends them at once rather than growing the buffer.
const HIGH_WATER: usize = 64 * 1024;

/// A [`TcpStream`] whose writes go out when a read begins.
#[derive(Debug)]
pub struct DeferredWrites {
    inner: TcpStream,
    held: Vec<u8>,
    /// How much of `held` is already written.
    sent: usize,
}

impl DeferredWrites {
    /// Wraps `inner`.
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            held: Vec::new(),
            sent: 0,
        }
    }

    /// Writes every held byte; pending while the socket cannot take more.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for DeferredWrites {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DeferredWrites {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() + buf.len() > HIGH_WATER {
            ready!(this.poll_send_held(cx))?;
            if buf.len() > HIGH_WATER {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Deliberately nothing: the next read sends what is held (see the module comment).
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for DeferredWrites {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    /// Written and flushed bytes stay in the client until it begins to read, then leave in
    /// one write; a write past the high-water mark leaves without a read. On loopback a
    /// write is in the peer's receive queue when the call returns, so "nothing yet" is
    /// checked without waiting.
    #[tokio::test]
    async fn held_writes_go_out_together_when_a_read_begins() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (flushed, wait_flushed) = oneshot::channel();
        let (go, wait_go) = oneshot::channel::<()>();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let mut stream = DeferredWrites::new(tcp);
            stream.write_all(b"DATA body").await.expect("write");
            stream.flush().await.expect("flush");
            stream.write_all(b"\r\n.\r\n").await.expect("write");
            stream.flush().await.expect("flush");
            flushed.send(()).expect("signal");
            wait_go.await.expect("the server looked");
            let mut reply = [0u8; 6];
            stream.read_exact(&mut reply).await.expect("reply");
            assert_eq!(&reply, b"250 ok");
            stream
                .write_all(&vec![b'x'; HIGH_WATER + 1])
                .await
                .expect("big write");
            stream
        });
        let (mut server, _) = listener.accept().await.expect("accept");
        wait_flushed.await.expect("the client flushed");
        let mut buf = [0u8; 64];
        match server.try_read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("bytes left before the client read: {other:?}"),
        }
        go.send(()).expect("signal");
        server.write_all(b"250 ok").await.expect("reply");
        let n = server.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"DATA body\r\n.\r\n", "both writes in one");
        let _stream = client.await.expect("client");
        let mut big = vec![0u8; HIGH_WATER + 1];
        server
            .read_exact(&mut big)
            .await
            .expect("the large write arrives without a read");
        assert!(big.iter().all(|&b| b == b'x'));
    }
}
