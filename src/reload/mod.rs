//! Hot reload: the watcher signals (`watch`), the [`Reloader`] decides and reports.
//!
//! A trigger's text is compiled into a new [`Snapshot`]; a valid one is swapped in whole, an
//! invalid one is refused and the running snapshot stays. Every outcome (applied, rejected,
//! unchanged) is counted in [`ReloadStats`] and `/metrics` and logged once. Requests in
//! flight keep the snapshot they started with. This module never touches a connection.

pub mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::config::ConfigErrors;
use crate::metrics::ReloadResult;
use crate::shutdown::ShutdownSignal;
use crate::snapshot::Snapshot;
pub use watch::{spawn_watcher, ReloadTrigger};

/// Counts of reload outcomes, for the admin API, logs and tests.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Valid changes swapped in.
    pub applied: AtomicU64,
    /// Invalid files refused (the running config stayed).
    pub rejected: AtomicU64,
    /// Triggers whose content matched the running config.
    pub unchanged: AtomicU64,
    /// The latest trigger was refused: the file on disk is not what runs (shown by `/readyz`
    /// as information, never as a readiness failure).
    pub last_rejected: AtomicBool,
}

/// What else must follow a newly applied snapshot (e.g. the user cache's capacity); called
/// after the swap, on the reloading task.
pub type OnApplied = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// Applies reload triggers to the config cell; the one place a snapshot is replaced.
pub struct Reloader {
    cell: Arc<ArcSwap<Snapshot>>,
    stats: Arc<ReloadStats>,
    on_applied: OnApplied,
}

impl Reloader {
    /// A reloader for `cell`, reporting into `stats`, calling `on_applied` after each swap.
    pub fn new(
        cell: Arc<ArcSwap<Snapshot>>,
        stats: Arc<ReloadStats>,
        on_applied: OnApplied,
    ) -> Self {
        Reloader {
            cell,
            stats,
            on_applied,
        }
    }

    /// Applies triggers until shutdown or until the watcher is gone.
    ///
    /// Each trigger is parsed and compiled on tokio's blocking pool, never on the task's own
    /// thread: this task runs on the first proxy worker's runtime, and compiling a large
    /// config (10k routes, 1k webhooks) there would stall every request that worker serves.
    /// Triggers are still applied one at a time, in order.
    pub async fn run(
        self,
        mut triggers: mpsc::Receiver<ReloadTrigger>,
        mut signal: ShutdownSignal,
    ) {
        let this = Arc::new(self);
        loop {
            let trigger = tokio::select! {
                t = triggers.recv() => match t { Some(t) => t, None => return },
                _ = signal.recv() => return,
            };
            let reloader = this.clone();
            let compiled = tokio::task::spawn_blocking(move || {
                // The outcome is counted and logged inside; an error needs nothing more.
                let _ = reloader.apply(trigger);
            });
            if let Err(e) = compiled.await {
                // Only a panic while compiling gets here; the running config stays.
                tracing::error!(error = %e, "config reload failed; the running config stays");
            }
        }
    }

    /// Compiles and swaps in new config text; an invalid text leaves the running config alone.
    pub fn apply(&self, trigger: ReloadTrigger) -> Result<(), ConfigErrors> {
        let current = self.cell.load_full();
        let stats = &self.stats;
        let next = match Snapshot::from_text(&trigger.text, Some(&current)) {
            Ok(next) => next,
            Err(errors) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                stats.last_rejected.store(true, Ordering::Relaxed);
                crate::metrics::config_reload(ReloadResult::Rejected);
                tracing::error!(
                    reason = trigger.reason,
                    "config reload rejected, the running config stays: {errors}"
                );
                return Err(errors);
            }
        };
        if next.hash == current.hash {
            stats.unchanged.fetch_add(1, Ordering::Relaxed);
            stats.last_rejected.store(false, Ordering::Relaxed);
            crate::metrics::config_reload(ReloadResult::Unchanged);
            tracing::info!(reason = trigger.reason, hash = %short(&next.hash), "config unchanged");
            return Ok(());
        }
        if next.listen != current.listen {
            tracing::warn!(running = %current.listen, wanted = %next.listen, "`listen` changed: restart userhook to move the proxy port; everything else is applied");
        }
        if next.admin_listen != current.admin_listen {
            tracing::warn!(running = %current.admin_listen, wanted = %next.admin_listen, "`admin.listen` changed: restart userhook to move the admin port; everything else is applied");
        }
        if current.file.learn.as_ref().map(|l| &l.out) != next.file.learn.as_ref().map(|l| &l.out) {
            tracing::warn!("`learn` changed: restart userhook to turn learn mode on or off or move its file; everything else is applied");
        }
        tracing::info!(
            reason = trigger.reason,
            hash = %short(&next.hash),
            upstream = %crate::redact::redact_url(&next.file.upstream),
            routes = next.routes.len(),
            webhooks = next.file.webhooks.len(),
            "config reloaded"
        );
        for w in &next.warnings {
            tracing::warn!("config warning: {w}");
        }
        let next = Arc::new(next);
        self.cell.store(next.clone());
        (self.on_applied)(&next);
        stats.applied.fetch_add(1, Ordering::Relaxed);
        stats.last_rejected.store(false, Ordering::Relaxed);
        crate::metrics::config_reload(ReloadResult::Applied);
        Ok(())
    }
}

/// The first 12 hex digits of a config hash: enough to tell versions apart in a log line.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A reload is compiled off the thread that runs the reloader (on `serve`, the first proxy
    /// worker): it once compiled there, and a 10k-route config stalled that worker's requests.
    #[test]
    fn reloads_compile_off_the_reloading_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let initial = Snapshot::from_text("upstream: http://127.0.0.1:1\n", None).unwrap();
            let cell = Arc::new(ArcSwap::from_pointee(initial));
            let stats = Arc::new(ReloadStats::default());
            let applied_on = Arc::new(Mutex::new(None));
            let seen = applied_on.clone();
            let reloader = Reloader::new(
                cell.clone(),
                stats.clone(),
                Box::new(move |_| {
                    *seen.lock().unwrap() = Some(std::thread::current().id());
                }),
            );
            let (tx, rx) = mpsc::channel(1);
            let (shutdown, signal) = crate::shutdown::Shutdown::new();
            let task = tokio::spawn(reloader.run(rx, signal));
            tx.send(ReloadTrigger {
                text: "upstream: http://127.0.0.1:2\n".into(),
                reason: "test",
            })
            .await
            .unwrap();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while stats.applied.load(Ordering::Relaxed) == 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "not applied in time"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let compiled_on = applied_on.lock().unwrap().expect("on_applied ran");
            assert_ne!(compiled_on, std::thread::current().id());
            assert_eq!(cell.load().file.upstream, "http://127.0.0.1:2");
            shutdown.trigger();
            task.await.unwrap();
        });
    }
}
