//! The clock of one connection: how long it may take to send a request head, and how long
//! it may stay idle between requests.
//!
//! hyper's own header-read timer starts as soon as a response is written, so it cannot give
//! an idle keep-alive connection longer than a request head. This clock tells the phases
//! apart instead: [`Phase::Head`] from the connection's start, or from the first byte after
//! an idle spell, until the head is parsed (the service is called); [`Phase::Busy`] while a
//! request is served, its response body included, with no deadline; [`Phase::Idle`] once
//! the last response is written. [`Watched`] sees the bytes read, [`InFlight`] the requests.
//!
//! Every change of phase happens while the connection's task polls hyper: a read, a request
//! head parsed, a response body dropped once written. [`ConnectionClock::expired`] is polled
//! right after hyper in that same task, so it sees each change in the turn that made it and
//! sets its timer then. A change wakes nothing: a wake-up per change would poll the whole
//! connection again, three times per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Where a connection stands.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head since then.
    Head(Instant),
    /// Serving this many requests.
    Busy(usize),
    /// Nothing in flight, and not a byte read, since then.
    Idle(Instant),
}

/// The clock of one connection, shared by its IO, its service and its task.
#[derive(Debug)]
pub(super) struct ConnectionClock {
    phase: Mutex<Phase>,
    head_timeout: Duration,
    idle_timeout: Duration,
}

impl ConnectionClock {
    /// A clock whose connection has just been accepted.
    pub(super) fn start(head_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            head_timeout,
            idle_timeout,
        })
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        // A panic cannot leave a `Phase` half-written: the value is still usable.
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Head(since) => Some(since + self.head_timeout),
            Phase::Busy(_) => None,
            Phase::Idle(since) => Some(since + self.idle_timeout),
        }
    }

    /// Bytes arrived: the first after an idle spell start the next request head's clock.
    fn bytes_read(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    /// A request head was parsed: the request is in flight until the guard drops, which
    /// its response body does once written.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        self.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        InFlight(self.clone())
    }

    /// Completes when the current phase outlives its deadline. Poll it after the connection,
    /// in the connection's task (see the module's comment): it reads the deadline at each
    /// poll and moves its timer when the deadline has moved.
    pub(super) async fn expired(&self) {
        // Moved to the first deadline at the first poll.
        let timer = tokio::time::sleep_until(Instant::now() + self.head_timeout);
        let mut timer = std::pin::pin!(timer);
        let mut armed = None;
        std::future::poll_fn(|cx| {
            // Busy: no deadline. A timer still set for an earlier one may wake the task
            // once more; it finds no deadline and waits on.
            let Some(deadline) = self.deadline() else {
                return Poll::Pending;
            };
            if armed != Some(deadline) {
                timer.as_mut().reset(deadline);
                armed = Some(deadline);
            }
            timer.as_mut().poll(cx)
        })
        .await;
    }
}

/// One request in flight; dropping it may leave the connection idle.
#[derive(Debug)]
pub(super) struct InFlight(Arc<ConnectionClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A connection's byte stream, reporting reads to its clock. It also carries what must live
/// as long as the TCP connection itself (`keep`), a websocket after an upgrade included.
pub(super) struct Watched<T, K> {
    inner: T,
    clock: Arc<ConnectionClock>,
    _keep: K,
}

impl<T, K> Watched<T, K> {
    pub(super) fn new(inner: T, clock: Arc<ConnectionClock>, keep: K) -> Self {
        Self {
            inner,
            clock,
            _keep: keep,
        }
    }
}

impl<T: AsyncRead + Unpin, K: Unpin> AsyncRead for Watched<T, K> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin, K: Unpin> AsyncWrite for Watched<T, K> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    /// Counts the times it is woken.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A request that comes and goes changes the phase twice without waking the task that
    /// waits on the clock; polled again, the clock takes the new deadline (the idle one),
    /// and that deadline still ends the wait.
    #[tokio::test]
    async fn a_change_of_phase_wakes_nothing_and_its_deadline_still_ends_the_wait() {
        let clock = ConnectionClock::start(Duration::from_secs(60), Duration::from_millis(100));
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut expired = std::pin::pin!(clock.expired());
        assert!(
            expired.as_mut().poll(&mut cx).is_pending(),
            "waiting for a head"
        );

        drop(clock.request_started());
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "a change of phase woke the task"
        );
        assert!(
            expired.as_mut().poll(&mut cx).is_pending(),
            "idle for 100 ms"
        );

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            wakes.0.load(Ordering::SeqCst) >= 1,
            "the idle deadline woke nothing"
        );
        assert!(
            expired.as_mut().poll(&mut cx).is_ready(),
            "the idle deadline passed, yet the clock waits on"
        );
    }
}
