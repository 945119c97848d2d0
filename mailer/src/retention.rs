//! Keeping delivery records no longer than needed: the daily job that deletes finished
//! records older than `mailer.retention.records_days`, and the erasure of everything held
//! about one address (`DELETE /recipients/{email}`), which leaves its suppression entry as a
//! keyed hash only. Both delete a bounded batch at a time
//! through the store's writer, each batch one statement among the writer's other work, so
//! that accepting mail never waits long behind them; each record's `.eml` file goes with it.

use crate::error::MailError;
use crate::metrics::Metrics;
use crate::store::{LastMail, Store};
use chrono::{DateTime, Utc};
use domain::{Email, MailRequestId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The most records one delete carries.
pub const BATCH: usize = 500;

/// How retention runs.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// The time between two runs of the job (a day); it first runs at start.
    pub every: Duration,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Deletes records and their files; cheap to clone.
#[derive(Clone)]
pub struct Retention {
    store: Store,
    /// Where `.eml` files are written, when mails go to files.
    files: Option<PathBuf>,
    metrics: Arc<Metrics>,
}

impl Retention {
    /// Deletes from `store`, and `<id>.eml` from `files` when mails go there.
    pub fn new(store: Store, files: Option<PathBuf>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            files,
            metrics,
        }
    }

    /// Runs [`Retention::purge`] for records older than `max_age` now, then every
    /// `options.every`, until the task is aborted.
    pub fn start(
        self,
        max_age: Duration,
        options: RetentionOptions,
    ) -> tokio::task::JoinHandle<()> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(options.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let before = Utc::now()
                    .checked_sub_signed(max_age)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                self.erase_due().await;
                match self.purge(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, %before, "old delivery records deleted"),
                    Err(e) => {
                        tracing::error!(error = %e, "deleting old delivery records failed; next run tomorrow")
                    }
                }
            }
        })
    }

    /// Deletes every finished record stored before `before`, a batch at a time; how many.
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64, MailError> {
        let mut deleted = 0;
        loop {
            let ids = self.store.expired(before, BATCH as u64).await?;
            if ids.is_empty() {
                return Ok(deleted);
            }
            let n = self.delete(ids, "age").await?;
            deleted += n;
            // A batch that deleted nothing was deleted by someone else meanwhile (erasure,
            // another mailer): the next read shows what is left.
            tokio::task::yield_now().await;
        }
    }

    /// The erasure a recipient's last mail asked for (the request's `erase_recipient`), once
    /// that mail's delivery has ended: the records of the address requested before it, and its
    /// own. A failure is logged, and the next run of the job tries again.
    pub async fn erase_after_last_mail(&self, last: &LastMail) {
        match self.erase_through(&last.to, Some(last)).await {
            Ok(n) => tracing::info!(count = n, "recipient erased after its last mail"),
            Err(e) => {
                tracing::error!(error = %e, "erasing a recipient after its last mail failed; the retention job tries again")
            }
        }
    }

    /// Makes the erasures asked by ended deliveries that a stopped process did not make.
    async fn erase_due(&self) {
        match self.store.erasures_due().await {
            Ok(due) => {
                for last in due {
                    self.erase_after_last_mail(&last).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the erasures due failed"),
        }
    }

    /// Deletes every record addressed to `email`, spelt any way, with its file; how many.
    /// Its suppression entry, if any, keeps only its lookup key: the address as written and
    /// its first reason go. That goes first: an erasure that stops half-way is made again
    /// only while a record asks for it.
    pub async fn erase(&self, email: &Email) -> Result<u64, MailError> {
        self.erase_through(email, None).await
    }

    /// [`Retention::erase`], or with `last`, only what was requested before that mail, and it.
    async fn erase_through(
        &self,
        email: &Email,
        last: Option<&LastMail>,
    ) -> Result<u64, MailError> {
        self.store.forget_suppressed_address(email).await?;
        let mut ids = self
            .store
            .addressed_to(email, last.map(|l| l.requested_at))
            .await?;
        if let Some(last) = last
            && !ids.contains(&last.id)
        {
            ids.push(last.id);
        }
        let mut erased = 0;
        for batch in ids.chunks(BATCH) {
            erased += self.delete(batch.to_vec(), "erasure").await?;
        }
        Ok(erased)
    }

    async fn delete(
        &self,
        ids: Vec<MailRequestId>,
        reason: &'static str,
    ) -> Result<u64, MailError> {
        let files: Vec<PathBuf> = match &self.files {
            Some(dir) => ids.iter().map(|id| dir.join(format!("{id}.eml"))).collect(),
            None => Vec::new(),
        };
        let n = self.store.delete(ids).await?;
        self.metrics.count_deleted(reason, n);
        // After the rows: a file left by a crash in between is an orphan the next erasure of
        // that address does not find, where a row without its file is still a true record.
        for file in files {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "could not delete a mail file")
                }
            }
        }
        Ok(n)
    }
}
