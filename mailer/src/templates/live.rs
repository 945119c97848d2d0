//! The set of templates in force, and its reloads.
//!
//! Readers take the current set ([`LiveTemplates::current`]) once per mail or per request and
//! keep it for that render, so a reload never mixes two sets in one mail. A reload loads and
//! checks a whole new set off the async workers; only a set that passes replaces the old one,
//! in one swap of an `Arc`. A refused set leaves the running one in force, with one error log
//! line naming the file and line and a count in `template_reloads_total{result="refused"}`.

use super::{LoadError, TemplateSource, Templates};
use crate::metrics::Metrics;
use notify::{RecursiveMode, Watcher};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Changes closer together than this are one reload: an editor's save is often a write, a
/// rename and a metadata change, and a copy of several files is many events.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The set in force, swapped whole at each valid reload.
pub struct LiveTemplates {
    current: RwLock<Arc<Templates>>,
    source: TemplateSource,
    metrics: Arc<Metrics>,
}

impl LiveTemplates {
    /// Holds `templates`, loaded from `source`.
    pub fn new(templates: Templates, source: TemplateSource, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(templates)),
            source,
            metrics,
        })
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Templates> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Loads the set again from its source and puts it in force if it passes its check;
    /// otherwise keeps the running set. Blocking: it reads and renders every file.
    pub fn reload(&self) -> Result<(), LoadError> {
        match Templates::load(&self.source) {
            Ok(templates) => {
                let count = templates.catalog().templates.len();
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(templates);
                self.metrics.count_template_reload("loaded");
                tracing::info!(templates = count, "templates reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.count_template_reload("refused");
                tracing::error!("templates not reloaded, the running set stays: {e}");
                Err(e)
            }
        }
    }

    /// Reloads on SIGHUP and on changes in `templates_dir`, when one is set; the watch lasts
    /// as long as the runtime. Without a folder SIGHUP loads the built-in set again, so the
    /// signal never stops the mailer. A folder that cannot be watched is logged, and SIGHUP
    /// still works.
    pub fn watch(self: &Arc<Self>) {
        let (tx, mut changes) = mpsc::unbounded_channel();
        let watcher = self.source.dir.clone().and_then(|dir| {
            // The folder, not its files: editors save by writing a new file and renaming it.
            let watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok_and(|e| !e.kind.is_access()) {
                        let _ = tx.send(());
                    }
                })
                .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
            match watcher {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "the templates folder cannot be watched; SIGHUP still reloads it");
                    None
                }
            }
        });
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let mut hangup = match hangup {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP cannot be listened for");
                None
            }
        };
        let live = self.clone();
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                let signalled = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = signalled => {}
                    Some(()) = changes.recv() => {
                        // Wait until the folder has been quiet for a moment.
                        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
                    }
                }
                let live = live.clone();
                let _ = tokio::task::spawn_blocking(move || live.reload()).await;
            }
        });
    }
}
