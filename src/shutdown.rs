//! Shutdown as a value: one `Shutdown` is triggered (by a signal or a test), every task that
//! holds a `ShutdownSignal` sees it. Draining works by each task finishing its own work; this
//! module never cancels or waits for anything itself.

use tokio::sync::watch;

/// The trigger side, owned by whoever decides the process is stopping.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// The listening side, cloned into every task that must stop.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A fresh, untriggered shutdown and its first listener.
    pub fn new() -> (Shutdown, ShutdownSignal) {
        let (tx, rx) = watch::channel(false);
        (Shutdown { tx }, ShutdownSignal { rx })
    }

    /// Starts the shutdown; idempotent.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown has been triggered (at once if it already was).
    pub async fn recv(&mut self) {
        // An error means the trigger side is gone, which also means: stop.
        let _ = self.rx.wait_for(|stopping| *stopping).await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): what Kubernetes and a terminal send.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: draining"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: draining"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
