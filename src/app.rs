//! Wiring: listeners, the config cell and its reload controller, the extractor task, the
//! admin API, and an orderly drain on shutdown.
//!
//! [`start`] returns a [`ServerHandle`] so tests (and `demo`) can run the real server in
//! process; `serve` is `start` plus waiting for SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use crate::metrics::ReloadResult;
use crate::proxy::{ProxyService, ProxyShared};
use crate::runtime::Runtime;
use crate::shutdown::{Shutdown, ShutdownSignal};

/// Matched exchanges waiting for extraction. Past this the proxy drops (and counts) rather
/// than wait: the client must never be slowed by detection.
const EXCHANGE_QUEUE: usize = 8192;

/// Quiet time after a file event before the config is re-read (editors write in bursts).
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);

/// How often the metrics recorder's housekeeping runs (drains histogram samples).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

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
    /// The latest trigger was refused: the file on disk is not what runs (shown by `/readyz`
    /// as information, never as a readiness failure).
    pub last_rejected: AtomicBool,
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
    start_on(options, initial, ProxyThreads::Caller).await
}

/// Where the proxy's accept loops and connections run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyThreads {
    /// On the runtime that called [`start`] (tests, the demo).
    Caller,
    /// On N threads, each a single-threaded runtime with its own `SO_REUSEPORT` listener and
    /// its own upstream pool, as nginx runs one worker per core: no work stealing, no shared
    /// pool lock on the request path. The first worker is the calling thread itself, which
    /// should be a current-thread runtime: detection and delivery then share it, so with one
    /// worker a request never costs a cross-thread wakeup.
    Dedicated(usize),
}

/// [`start`] with the proxy's threads chosen.
pub async fn start_on(
    options: Options,
    initial: Runtime,
    threads: ProxyThreads,
) -> Result<ServerHandle, String> {
    let proxy_listener = match threads {
        ProxyThreads::Caller => TcpListener::bind(initial.listen).await,
        ProxyThreads::Dedicated(_) => bind_reuseport(initial.listen),
    }
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
    crate::metrics::install();
    tasks.push(tokio::spawn(run_metrics_upkeep(signal.clone())));
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
    match threads {
        ProxyThreads::Caller => tasks.push(tokio::spawn(serve_proxy(
            proxy_listener,
            shared,
            runtime.clone(),
            signal,
        ))),
        ProxyThreads::Dedicated(n) => {
            let mut listeners = vec![proxy_listener];
            for _ in 1..n.max(1) {
                listeners.push(
                    bind_reuseport(proxy_addr)
                        .map_err(|e| format!("cannot listen on {proxy_addr} (listen): {e}"))?,
                );
            }
            let mut listeners = listeners.into_iter();
            if let Some(first) = listeners.next() {
                tasks.push(tokio::spawn(serve_proxy(
                    first,
                    shared.clone(),
                    runtime.clone(),
                    signal.clone(),
                )));
            }
            for (i, listener) in listeners.enumerate() {
                let done = spawn_proxy_thread(
                    i + 1,
                    listener,
                    shared.clone(),
                    runtime.clone(),
                    signal.clone(),
                )?;
                tasks.push(tokio::spawn(async move {
                    let _ = done.await;
                }));
            }
        }
    }

    tracing::info!(%proxy_addr, %admin_addr, upstream = %crate::config::summary::redact_url(&runtime.load().file.upstream), "userhook is listening");
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

/// Binds `addr` with `SO_REUSEPORT`, so several threads can each accept on their own socket
/// and the kernel spreads connections between them.
fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Runs one proxy worker on its own thread; the receiver resolves when it has drained.
fn spawn_proxy_thread(
    index: usize,
    listener: TcpListener,
    shared: Arc<ProxyShared>,
    runtime: Arc<ArcSwap<Runtime>>,
    signal: ShutdownSignal,
) -> Result<tokio::sync::oneshot::Receiver<()>, String> {
    let listener = listener.into_std().map_err(|e| e.to_string())?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("userhook-proxy-{index}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a proxy worker runtime");
                    return;
                }
            };
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve_proxy(listener, shared, runtime, signal).await,
                    Err(e) => tracing::error!(error = %e, "proxy worker cannot use its listener"),
                }
            });
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("cannot start proxy worker thread: {e}"))?;
    Ok(done_rx)
}

/// `start` with the proxy on `workers` dedicated threads, then wait for SIGTERM/SIGINT and
/// drain.
pub async fn serve(options: Options, initial: Runtime, workers: usize) -> Result<(), String> {
    let handle = start_on(options, initial, ProxyThreads::Dedicated(workers)).await?;
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
    // Connections are owned here so the ones still open when the grace period ends can be
    // closed for real (each holds the extractor's sender, which `stop` waits on).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
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
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %remote, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = runtime.load().file.timeouts.shutdown_grace.0;
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all client connections drained"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace = %humantime::format_duration(grace),
                open = connections.len(),
                "grace period over; closing remaining connections"
            );
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
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
                request_id = %event.request.request_id,
                "user event"
            );
            crate::metrics::event_detected(event.action);
            dispatcher.dispatch(&event);
            // Subscribers hear of the event before a strict-mode client sees its response.
            let _ = events.send(event);
            if let Some(ack) = durable {
                dispatcher.notify_when_durable(ack);
            }
        }
    }
}

/// Runs the metrics recorder's upkeep on an interval until shutdown.
async fn run_metrics_upkeep(mut signal: ShutdownSignal) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => crate::metrics::run_upkeep(),
            _ = signal.recv() => return,
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
    tracing::info!(
        reason = trigger.reason,
        hash = %short(&next.hash),
        upstream = %crate::config::summary::redact_url(&next.file.upstream),
        routes = next.routes.len(),
        webhooks = next.file.webhooks.len(),
        "config reloaded"
    );
    cell.store(Arc::new(next));
    stats.applied.fetch_add(1, Ordering::Relaxed);
    stats.last_rejected.store(false, Ordering::Relaxed);
    crate::metrics::config_reload(ReloadResult::Applied);
    Ok(())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
