//! The test double of the mailer: a [`MailHandler`] that keeps what it receives in memory.
//!
//! It answers like the mailer would: `duplicate` for an id seen before, `rejected` for an
//! address starting with `reject-`, and it never answers an address starting with `stall-`
//! (to test timeouts); everything else is `accepted`.

use async_trait::async_trait;
use domain::{MailAnswer, MailRequest, MailRequestId};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use transport::{MailHandler, Origin};

/// Records every request it is handed.
pub struct RecordingHandler {
    stored: Mutex<HashMap<MailRequestId, MailRequest>>,
    calls: watch::Sender<usize>,
    /// Requests held unanswered (`stall-` addresses).
    stalled: AtomicUsize,
}

impl RecordingHandler {
    pub fn new() -> Self {
        Self {
            stored: Mutex::new(HashMap::new()),
            calls: watch::Sender::new(0),
            stalled: AtomicUsize::new(0),
        }
    }

    /// The stored request with `id`, if it arrived.
    pub fn stored(&self, id: MailRequestId) -> Option<MailRequest> {
        self.stored.lock().unwrap().get(&id).cloned()
    }

    /// How many distinct requests were stored.
    pub fn stored_count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    /// Waits until `handle` was called at least `n` times; false after `within`.
    pub async fn wait_for_calls(&self, n: usize, within: Duration) -> bool {
        let mut calls = self.calls.subscribe();
        tokio::time::timeout(within, calls.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }

    /// How many requests are held unanswered.
    pub fn stalled(&self) -> usize {
        self.stalled.load(Ordering::SeqCst)
    }

    /// How many times `handle` was called.
    pub fn calls(&self) -> usize {
        *self.calls.borrow()
    }
}

#[async_trait]
impl MailHandler for RecordingHandler {
    async fn handle(&self, request: MailRequest, _origin: Origin) -> MailAnswer {
        let email = request.to.email.as_str().to_string();
        if email.starts_with("stall-") {
            self.stalled.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        let id = request.id;
        let answer = if email.starts_with("reject-") {
            MailAnswer::rejected(Some(id), "the test handler rejects reject-* addresses")
        } else {
            match self.stored.lock().unwrap().entry(id) {
                Entry::Occupied(_) => MailAnswer::duplicate(id),
                Entry::Vacant(slot) => {
                    slot.insert(request);
                    MailAnswer::accepted(id)
                }
            }
        };
        self.calls.send_modify(|c| *c += 1);
        answer
    }
}
