//! The thread that copies the SQLite WAL back into the database file (a checkpoint) when
//! the writer asks, so that a commit never also pays for the copy.

use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// A request to the checkpoint thread, with the sender to tell when it is done if the
/// writer waits for it.
type Request = Option<oneshot::Sender<()>>;

/// The writer's side of the checkpoint thread. The thread ends when this is dropped.
pub(super) struct Checkpoints {
    ask: mpsc::Sender<Request>,
}

impl Checkpoints {
    /// Starts the thread on its own connection to `path`. A passive checkpoint never waits
    /// for a lock and never holds up a writer.
    pub(super) fn start(path: &Path) -> Result<Self, String> {
        let failed = |e: &dyn std::fmt::Display| {
            format!("could not start checkpoints for {}: {e}", path.display())
        };
        let connection = super::connection::connect(path).map_err(|e| failed(&e))?;
        connection
            .execute_batch("PRAGMA synchronous = FULL;")
            .map_err(|e| failed(&e))?;
        let (ask, mut asked) = mpsc::channel::<Request>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Some(done) = asked.blocking_recv() {
                    let result = connection
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            row.get::<_, i64>(0)
                        });
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "could not copy the SQLite WAL into the database");
                    }
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
            })
            .map_err(|e| failed(&e))?;
        Ok(Self { ask })
    }

    /// Asks for a checkpoint and goes on writing.
    pub(super) fn ask(&self) {
        // Full: a checkpoint is already asked for, which covers this one.
        let _ = self.ask.try_send(None);
    }

    /// Asks for a checkpoint and waits for it to end: with no write meanwhile, it copies
    /// every frame, and the next commit starts the log over.
    pub(super) async fn wait(&self) {
        let (done, ended) = oneshot::channel();
        if self.ask.send(Some(done)).await.is_ok() {
            let _ = ended.await;
        }
    }
}
