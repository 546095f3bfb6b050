//! Wiring: listeners, the config cell and its reload controller, the extractor task, the
//! admin API, and an orderly drain on shutdown.
//!
//! [`start`] returns a [`ServerHandle`] so tests (and `demo`) can run the real server in
//! process; `serve` is `start` plus waiting for SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::config::watch::{spawn_watcher, ReloadTrigger};
use crate::delivery::DeliveryEngine;
use crate::dispatch::Dispatcher;
use crate::event::UserEvent;
use crate::exchange::Exchange;
use crate::extract::Extractor;
use crate::proxy::{ProxyService, ProxyShared};
use crate::runtime::Runtime;
use crate::shutdown::{Shutdown, ShutdownSignal};

/// Matched exchanges waiting for extraction. Past this the proxy drops (and counts) rather
/// than wait: the client must never be slowed by detection.
const EXCHANGE_QUEUE: usize = 8192;

/// Quiet time after a file event before the config is re-read (editors write in bursts).
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);

/// How the server is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The YAML file; watched for changes.
    pub config_path: PathBuf,
    /// Watch the file and SIGHUP for reloads (off only in tests that swap configs by hand).
    pub watch: bool,
}

/// Counts of reload outcomes, for the admin API, logs and tests.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Valid changes swapped in.
    pub applied: AtomicU64,
    /// Invalid files refused (the running config stayed).
    pub rejected: AtomicU64,
    /// Triggers whose content matched the running config.
    pub unchanged: AtomicU64,
}

/// A running server.
pub struct ServerHandle {
    /// The proxy's bound address (useful when the config said port 0).
    pub proxy_addr: SocketAddr,
    /// The admin API's bound address.
    pub admin_addr: SocketAddr,
    /// The current config snapshot.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Reload outcomes so far.
    pub reloads: Arc<ReloadStats>,
    /// The webhook delivery engine: records, dead letters, pending deliveries.
    pub deliveries: DeliveryEngine,
    events: broadcast::Sender<UserEvent>,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Every user event from now on (for tests and the demo's console).
    pub fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// Applies config text as a reload would (used by tests that do not watch files).
    pub fn apply(&self, text: &str) -> Result<(), crate::config::ConfigErrors> {
        apply_reload(
            &self.runtime,
            &self.reloads,
            ReloadTrigger {
                text: text.to_string(),
                reason: "api",
            },
        )
    }

    /// Stops accepting, drains in-flight requests within the grace period, and returns.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            let _ = task.await;
        }
        // Requests and extraction are done; let attempts in flight finish within the grace,
        // then commit the spool's last writes and release its file.
        let grace = self.runtime.load().file.timeouts.shutdown_grace.0;
        self.deliveries.stop(grace).await;
    }
}

/// Binds the listeners and starts every task; returns once the server accepts connections.
pub async fn start(options: Options, initial: Runtime) -> Result<ServerHandle, String> {
    let proxy_listener = TcpListener::bind(initial.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (listen): {e}", initial.listen))?;
    let admin_listener = TcpListener::bind(initial.admin_listen).await.map_err(|e| {
        format!(
            "cannot listen on {} (admin.listen): {e}",
            initial.admin_listen
        )
    })?;
    let proxy_addr = proxy_listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;

    let extractor = Arc::new(Extractor::new(initial.file.user_cache.capacity));
    let runtime = Arc::new(ArcSwap::from_pointee(initial));
    let reloads = Arc::new(ReloadStats::default());
    let (shutdown, signal) = Shutdown::new();
    let (events, _) = broadcast::channel(1024);
    let (exchange_tx, exchange_rx) = mpsc::channel(EXCHANGE_QUEUE);
    let spool_dir = crate::delivery::spool::resolve_dir(
        &options.config_path,
        &runtime.load().file.delivery.spool_dir,
    );
    let spool = crate::delivery::Spool::open(&spool_dir).map_err(|e| {
        if crate::delivery::spool::is_locked(&e) {
            format!("{e} (delivery.spool_dir): another userhook is using this spool")
        } else {
            format!("{e} (delivery.spool_dir)")
        }
    })?;
    let deliveries = DeliveryEngine::start_with(runtime.clone(), spool)?;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(run_extractor(
        exchange_rx,
        extractor.clone(),
        events.clone(),
        Dispatcher::new(deliveries.clone()),
    )));
    if options.watch {
        let triggers = spawn_watcher(options.config_path.clone(), RELOAD_DEBOUNCE)
            .map_err(|e| format!("cannot watch {}: {e}", options.config_path.display()))?;
        tasks.push(tokio::spawn(run_reloads(
            triggers,
            runtime.clone(),
            reloads.clone(),
            extractor.clone(),
            signal.clone(),
        )));
    }
    let shared = Arc::new(ProxyShared {
        runtime: runtime.clone(),
        exchanges: exchange_tx,
    });
    tasks.push(tokio::spawn(crate::admin::serve(
        admin_listener,
        crate::admin::AdminState {
            runtime: runtime.clone(),
            reloads: reloads.clone(),
            deliveries: deliveries.clone(),
        },
        signal.clone(),
    )));
    tasks.push(tokio::spawn(serve_proxy(
        proxy_listener,
        shared,
        runtime.clone(),
        signal,
    )));

    tracing::info!(%proxy_addr, %admin_addr, upstream = %runtime.load().file.upstream, "userhook is listening");
    Ok(ServerHandle {
        proxy_addr,
        admin_addr,
        runtime,
        reloads,
        deliveries,
        events,
        shutdown,
        tasks,
    })
}

/// `start`, then wait for SIGTERM/SIGINT and drain.
pub async fn serve(options: Options, initial: Runtime) -> Result<(), String> {
    let handle = start(options, initial).await?;
    crate::shutdown::termination_signal().await;
    handle.stop().await;
    tracing::info!("userhook stopped");
    Ok(())
}

/// Accepts client connections until shutdown, then lets open ones finish within the grace.
async fn serve_proxy(
    listener: TcpListener,
    shared: Arc<ProxyShared>,
    runtime: Arc<ArcSwap<Runtime>>,
    mut signal: ShutdownSignal,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(ProxyService::new(shared.clone(), remote));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %remote, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = runtime.load().file.timeouts.shutdown_grace.0;
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all client connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!(grace = %humantime::format_duration(grace), "grace period over; closing remaining connections"),
    }
}

/// Turns finished exchanges into events and hands each to the dispatcher, off the request
/// path. Dispatching only queues (a short lock, no I/O), so this loop never waits on a target.
async fn run_extractor(
    mut exchanges: mpsc::Receiver<Exchange>,
    extractor: Arc<Extractor>,
    events: broadcast::Sender<UserEvent>,
    dispatcher: Dispatcher,
) {
    while let Some(mut exchange) = exchanges.recv().await {
        let durable = exchange.durable.take();
        if let Some(event) = extractor.process(&exchange) {
            tracing::info!(
                event = event.event_type,
                id = %event.id,
                seq = event.seq,
                user_id = event.user.get("ID").map(String::as_str).unwrap_or(""),
                status = event.request.status,
                "user event"
            );
            dispatcher.dispatch(&event);
            if let Some(ack) = durable {
                dispatcher.notify_when_durable(ack);
            }
            let _ = events.send(event);
        }
    }
}

/// Applies reload triggers until shutdown.
async fn run_reloads(
    mut triggers: mpsc::Receiver<ReloadTrigger>,
    runtime: Arc<ArcSwap<Runtime>>,
    stats: Arc<ReloadStats>,
    extractor: Arc<Extractor>,
    mut signal: ShutdownSignal,
) {
    loop {
        let trigger = tokio::select! {
            t = triggers.recv() => match t { Some(t) => t, None => return },
            _ = signal.recv() => return,
        };
        if apply_reload(&runtime, &stats, trigger).is_ok() {
            extractor.set_capacity(runtime.load().file.user_cache.capacity);
        }
    }
}

/// Validates and swaps in new config text; an invalid text leaves the running config alone.
fn apply_reload(
    cell: &ArcSwap<Runtime>,
    stats: &ReloadStats,
    trigger: ReloadTrigger,
) -> Result<(), crate::config::ConfigErrors> {
    let current = cell.load_full();
    let next = match Runtime::from_text(&trigger.text, Some(&current)) {
        Ok(next) => next,
        Err(errors) => {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                reason = trigger.reason,
                "config reload rejected, the running config stays: {errors}"
            );
            return Err(errors);
        }
    };
    if next.hash == current.hash {
        stats.unchanged.fetch_add(1, Ordering::Relaxed);
        tracing::info!(reason = trigger.reason, hash = %short(&next.hash), "config unchanged");
        return Ok(());
    }
    if next.listen != current.listen {
        tracing::warn!(running = %current.listen, wanted = %next.listen, "`listen` changed: restart userhook to move the proxy port; everything else is applied");
    }
    if next.admin_listen != current.admin_listen {
        tracing::warn!(running = %current.admin_listen, wanted = %next.admin_listen, "`admin.listen` changed: restart userhook to move the admin port; everything else is applied");
    }
    tracing::info!(
        reason = trigger.reason,
        hash = %short(&next.hash),
        upstream = %next.file.upstream,
        routes = next.routes.len(),
        webhooks = next.file.webhooks.len(),
        "config reloaded"
    );
    cell.store(Arc::new(next));
    stats.applied.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
