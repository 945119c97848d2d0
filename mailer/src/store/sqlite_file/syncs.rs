//! The thread that makes the writer's commits durable before they are answered.
//!
//! The writer's connection commits without waiting for the disk (`synchronous=NORMAL`: in
//! WAL mode a commit then only writes its frames to the log). It hands each committed batch
//! here and starts the next one at once. This thread syncs the log (`fdatasync` of the
//! `-wal` file: whatever was written to it before the call is on disk when it returns) and
//! only then answers the batches it covers: every batch committed while the last sync ran
//! shares the next one. So the next batch fills and is written while the current one syncs,
//! and an answer still comes only after its commit is on disk, as with `synchronous=FULL`.
//!
//! A checkpoint never copies frames that are not on disk yet: the checkpoint connection
//! keeps `synchronous=FULL`, under which SQLite syncs the log before it copies from it.

use super::batch::{Committed, WriteCounters};
use std::fs::File;
use std::path::Path;
use std::sync::mpsc;

/// The writer's side of the sync thread. The thread answers what it holds and ends when this
/// is dropped.
pub(super) struct Syncs {
    committed: mpsc::Sender<Committed>,
}

impl Syncs {
    /// Starts the thread for the database at `path`, whose log exists (the writer has read
    /// from the database).
    pub(super) fn start(path: &Path, counters: WriteCounters) -> Result<Self, String> {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let log = File::options()
            .write(true)
            .open(&wal)
            .map_err(|e| format!("could not open {} to sync it: {e}", wal.display()))?;
        let (committed, waiting) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || run(|| log.sync_data(), &waiting, &counters))
            .map_err(|e| format!("could not start the sync thread: {e}"))?;
        Ok(Self { committed })
    }

    /// Answers `batch` once what it wrote is on disk; at once when it rolled back.
    pub(super) fn answer_when_durable(&self, batch: Committed) {
        if !batch.is_committed() {
            batch.answer();
            return;
        }
        // The thread ends only once this side is dropped.
        if let Err(mpsc::SendError(batch)) = self.committed.send(batch) {
            batch.fail("the delivery store's sync thread has stopped");
        }
    }
}

/// Syncs with `sync` (the log's `fdatasync`) whenever batches wait, and answers them.
fn run(
    sync: impl Fn() -> std::io::Result<()>,
    waiting: &mpsc::Receiver<Committed>,
    counters: &WriteCounters,
) {
    let mut group = Vec::new();
    while let Ok(first) = waiting.recv() {
        group.push(first);
        group.extend(waiting.try_iter());
        match sync() {
            Ok(()) => {
                counters.syncs.inc();
                group.drain(..).for_each(Committed::answer);
            }
            Err(e) => {
                // Committed but perhaps not on disk: the callers hear that the store failed,
                // as when a commit fails. A request asked again is found stored (a
                // duplicate); a claim not answered is put back at the next start.
                tracing::error!(error = %e, "could not sync the delivery store's log to disk");
                let error = format!("could not sync the delivery store to disk: {e}");
                group.drain(..).for_each(|batch| batch.fail(&error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MailError;
    use crate::store::Inserted;

    /// A sync that fails answers every batch of its group with the store's error, none as
    /// stored; the syncs counted are only those that succeeded.
    #[test]
    fn a_failed_sync_fails_every_batch_it_covers() {
        let counters = WriteCounters::default();
        let (committed, waiting) = mpsc::channel();
        let mut answers = Vec::new();
        for _ in 0..3 {
            let (batch, answer) = Committed::one_insert_for_test();
            committed.send(batch).expect("the channel is open");
            answers.push(answer);
        }
        drop(committed);
        run(
            || Err(std::io::Error::other("the disk is gone")),
            &waiting,
            &counters,
        );
        for answer in answers {
            match answer.blocking_recv().expect("an answer") {
                Err(MailError::Write(e)) => assert!(e.contains("the disk is gone"), "{e}"),
                Ok(Inserted::Stored(_) | Inserted::Duplicate) => {
                    panic!("answered as written although the sync failed")
                }
                Err(other) => panic!("another error: {other:?}"),
            }
        }
        assert_eq!(counters.syncs.get(), 0);
    }
}
