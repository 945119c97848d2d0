//! A test double of the `Transport` trait: it records what it publishes and fails on demand.

use async_trait::async_trait;
use domain::MailRequest;
use domain::config::TransportKind;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use transport::{LinkState, PublishError, Receipt, Transport};

/// Records every request it confirms; refuses the next `fail_next` publishes.
pub struct RecordingTransport {
    published: Mutex<Vec<MailRequest>>,
    count: watch::Sender<usize>,
    fail_next: AtomicUsize,
    failures: AtomicUsize,
    connected: AtomicBool,
}

impl RecordingTransport {
    pub fn new() -> Self {
        Self {
            published: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            fail_next: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            connected: AtomicBool::new(true),
        }
    }

    /// The next `n` publishes fail with a retryable error.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// What `state()` reports.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::SeqCst);
    }

    /// Publishes refused so far.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// Every request confirmed so far.
    pub fn published(&self) -> Vec<MailRequest> {
        self.published.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests were confirmed (at most 20 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<MailRequest> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "expected {n} published mail requests, got {}",
                    self.published().len()
                )
            })
            .expect("the transport double is alive");
        self.published()
    }

    /// The confirmed requests of one template.
    pub fn with_template(&self, template: &str) -> Vec<MailRequest> {
        self.published()
            .into_iter()
            .filter(|r| r.template.as_str() == template)
            .collect()
    }
}

#[async_trait]
impl Transport for RecordingTransport {
    async fn publish(&self, request: &MailRequest) -> Result<Receipt, PublishError> {
        let refuse = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(PublishError::Retryable(
                "the test transport refused on purpose".into(),
            ));
        }
        let mut published = self.published.lock().expect("lock");
        published.push(request.clone());
        self.count.send_replace(published.len());
        Ok(Receipt::Confirmed)
    }

    fn state(&self) -> LinkState {
        if self.connected.load(Ordering::SeqCst) {
            LinkState::Connected
        } else {
            LinkState::Disconnected
        }
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Socketio
    }

    async fn close(&self) {}
}
