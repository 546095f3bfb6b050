//! Wiring, and nothing else: the listeners, the config cell and its reloader, the extractor
//! task, the delivery engine, the admin API, and an orderly drain on shutdown.
//!
//! [`start`] returns a [`ServerHandle`] so tests (and `demo`) can run the real server in
//! process; [`serve`] is `start` plus waiting for SIGTERM/SIGINT. Every piece of behaviour
//! lives in the module that owns it; this file only connects them in the right order and must
//! never grow behaviour of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::event::UserEvent;
use crate::events::dispatch::Dispatcher;
use crate::events::extractor::Extractor;
use crate::events::identity::Identity;
use crate::events::spool::{Spool, SpoolErrorKind, SpoolSource};
use crate::events::DeliveryEngine;
use crate::learn::Learner;
use crate::proxy::listener::bind_reuseport;
use crate::proxy::{ProxyShared, ProxyThreads};
use crate::reload::{ReloadStats, ReloadTrigger, Reloader};
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::snapshot::Snapshot;

/// Quiet time after a file event before the config is re-read (editors write in bursts).
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);

/// How often the metrics recorder's housekeeping runs (drains histogram samples).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Why the server did not start; each says which setting to look at.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind (address in use, no permission).
    #[error("cannot listen on {addr} ({key}): {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The config key that named it.
        key: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The spool file could not be opened.
    #[error("{0} (delivery.spool_dir): another userhook is using this spool")]
    SpoolLocked(crate::events::spool::SpoolError),
    /// The spool file could not be opened for another reason.
    #[error("{0} (delivery.spool_dir)")]
    Spool(crate::events::spool::SpoolError),
    /// `strict` mode and a spool that cannot be opened: strict promises that no change a
    /// client saw succeed goes un-notified, so userhook does not start without a spool.
    #[error("{0} (delivery.spool_dir). delivery.guarantee is strict, so userhook does not start without a working spool: fix the disk, or move the file aside (mv spool.redb spool.redb.bad) to start with an empty spool, or run with delivery.guarantee: fast, which starts anyway and moves a damaged file aside itself")]
    StrictSpool(crate::events::spool::SpoolError),
    /// The delivery engine could not start.
    #[error(transparent)]
    Engine(#[from] crate::events::EngineError),
    /// The config file cannot be watched for reloads.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The config file.
        path: String,
        /// Why watching failed.
        source: crate::reload::watch::WatchError,
    },
    /// The proxy's workers could not start.
    #[error(transparent)]
    Proxy(#[from] crate::proxy::listener::ListenError),
}

/// How the server is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The YAML file; watched for changes.
    pub config_path: PathBuf,
    /// Watch the file and SIGHUP for reloads (off only in tests that swap configs by hand).
    pub watch: bool,
}

/// A running server.
pub struct ServerHandle {
    /// The proxy's bound address (useful when the config said port 0).
    pub proxy_addr: SocketAddr,
    /// The admin API's bound address.
    pub admin_addr: SocketAddr,
    /// The current config snapshot.
    pub runtime: Arc<ArcSwap<Snapshot>>,
    /// Reload outcomes so far.
    pub reloads: Arc<ReloadStats>,
    /// The webhook delivery engine: records, dead letters, pending deliveries.
    pub deliveries: DeliveryEngine,
    reloader: Reloader,
    events: broadcast::Sender<UserEvent>,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
    identity: Arc<Identity>,
    learner: Option<Arc<Learner>>,
}

impl ServerHandle {
    /// Every user event from now on (for tests and the demo's console).
    pub fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// Applies config text as a reload would (used by tests that do not watch files).
    pub fn apply(&self, text: &str) -> Result<(), crate::config::ConfigErrors> {
        self.reloader.apply(ReloadTrigger {
            text: text.to_string(),
            reason: "api",
        })
    }

    /// Learn mode's learner, when the config has `learn:`.
    pub fn learner(&self) -> Option<&Arc<Learner>> {
        self.learner.as_ref()
    }

    /// Stops accepting, drains in-flight requests within the grace period, and returns.
    /// In learn mode the proposed rules are written once extraction is done.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(learner) = self.learner.clone() {
            let exchanges = learner.exchanges();
            let skipped = crate::events::handoff::learn_skipped();
            if skipped > 0 {
                tracing::warn!(skipped, "learn: unmatched exchanges were not learned because the hand-off queue was half full (matched calls keep the room they need)");
            }
            match tokio::task::spawn_blocking(move || learner.write().map(|()| learner)).await {
                Ok(Ok(learner)) => tracing::info!(
                    out = %learner.out().display(),
                    exchanges,
                    "learn: the proposed rules were written; review them, then `userhook check` the file"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "learn: the proposed rules were not written (GET /learn showed them while running)")
                }
                Err(e) => tracing::error!(error = %e, "learn: the writer task failed"),
            }
        }
        // Extraction is done: write what identity learned since the last flush.
        let identity = self.identity.clone();
        match tokio::task::spawn_blocking(move || identity.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "identity changes since the last flush are lost")
            }
            Err(e) => tracing::error!(error = %e, "identity flush task failed"),
        }
        // Requests and extraction are done; let attempts in flight finish within the grace,
        // then commit the spool's last writes and release its file.
        let grace = self.runtime.load().file.timeouts.shutdown_grace.0;
        self.deliveries.stop(grace).await;
    }
}

/// Binds the listeners and starts every task; returns once the server accepts connections.
pub async fn start(options: Options, initial: Snapshot) -> Result<ServerHandle, StartError> {
    start_on(options, initial, ProxyThreads::Caller).await
}

/// [`start`] with the proxy's threads chosen.
pub async fn start_on(
    options: Options,
    initial: Snapshot,
    threads: ProxyThreads,
) -> Result<ServerHandle, StartError> {
    start_with_spool(options, initial, threads, None).await
}

/// [`start_on`] with the spool taken from `spool_source` instead of `delivery.spool_dir`
/// (fault drills and tests put a [`SpoolSource::Faulty`] layer under it).
pub async fn start_with_spool(
    options: Options,
    initial: Snapshot,
    threads: ProxyThreads,
    spool_source: Option<SpoolSource>,
) -> Result<ServerHandle, StartError> {
    let listen_error = |addr: SocketAddr, key: &'static str| {
        move |source| StartError::Listen { addr, key, source }
    };
    let proxy_listener = match threads {
        ProxyThreads::Caller => TcpListener::bind(initial.listen).await,
        ProxyThreads::Dedicated(_) => bind_reuseport(initial.listen),
    }
    .map_err(listen_error(initial.listen, "listen"))?;
    let admin_listener = TcpListener::bind(initial.admin_listen)
        .await
        .map_err(listen_error(initial.admin_listen, "admin.listen"))?;
    let proxy_addr = proxy_listener
        .local_addr()
        .map_err(listen_error(initial.listen, "listen"))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(listen_error(initial.admin_listen, "admin.listen"))?;

    let runtime = Arc::new(ArcSwap::from_pointee(initial));
    let reloads = Arc::new(ReloadStats::default());
    let (shutdown, signal) = Shutdown::new();
    let (events, _) = broadcast::channel(1024);
    let (handoff_tx, handoff_rx) = crate::events::handoff::channel();
    let spool_dir = crate::events::spool::resolve_dir(
        &options.config_path,
        &runtime.load().file.delivery.spool_dir,
    );
    let source = spool_source.unwrap_or(SpoolSource::Dir(spool_dir));
    // A spool in memory keeps nothing on disk; identity then stays in memory too.
    let in_memory = matches!(source, SpoolSource::Memory);
    let spool = open_spool(source, runtime.load().strict)?;
    let deliveries = DeliveryEngine::start_with(runtime.clone(), spool)?;
    // After the spool: its lock tells a second instance to stop before it touches identity.
    let identity = if in_memory {
        let file = &runtime.load().file;
        Arc::new(Identity::in_memory(
            crate::events::identity::max_users(file),
            file.identity.max_sessions,
        ))
    } else {
        open_identity(&options.config_path, &runtime.load())
    };
    let learner = learner(&options.config_path, &runtime.load());
    let extractor = Arc::new(Extractor::with_identity(identity.clone()));
    let on_demand = reloader(&runtime, &reloads, &extractor);

    let mut tasks = Vec::new();
    crate::metrics::install();
    tasks.push(tokio::spawn(run_metrics_upkeep(signal.clone())));
    tasks.push(tokio::spawn(crate::events::identity::run_flusher(
        identity.clone(),
        signal.clone(),
    )));
    tasks.push(tokio::spawn(crate::events::extractor::run(
        handoff_rx,
        extractor.clone(),
        events.clone(),
        Dispatcher::new(deliveries.clone()),
        runtime.clone(),
        learner.clone(),
    )));
    if options.watch {
        let triggers = crate::reload::spawn_watcher(options.config_path.clone(), RELOAD_DEBOUNCE)
            .map_err(|source| StartError::Watch {
            path: options.config_path.display().to_string(),
            source,
        })?;
        let watching = reloader(&runtime, &reloads, &extractor);
        tasks.push(tokio::spawn(watching.run(triggers, signal.clone())));
    }
    tasks.push(tokio::spawn(crate::admin::serve(
        admin_listener,
        crate::admin::AdminState {
            runtime: runtime.clone(),
            reloads: reloads.clone(),
            deliveries: deliveries.clone(),
            bound: admin_addr,
            learner: learner.clone(),
        },
        signal.clone(),
    )));
    let shared = Arc::new(ProxyShared {
        runtime: runtime.clone(),
        exchanges: handoff_tx,
        connections: Default::default(),
        learn: learner.is_some(),
    });
    tasks.extend(crate::proxy::listener::serve(
        proxy_listener,
        threads,
        shared,
        runtime.clone(),
        signal,
    )?);

    tracing::info!(%proxy_addr, %admin_addr, upstream = %crate::redact::redact_url(&runtime.load().file.upstream), "userhook is listening");
    Ok(ServerHandle {
        proxy_addr,
        admin_addr,
        runtime,
        reloads,
        deliveries,
        reloader: on_demand,
        events,
        shutdown,
        tasks,
        identity,
        learner,
    })
}

/// Learn mode's learner when the config has `learn:` (its `out` relative to the config
/// file's directory).
fn learner(config_path: &std::path::Path, initial: &Snapshot) -> Option<Arc<Learner>> {
    let spec = initial.file.learn.as_ref()?;
    let out = std::path::Path::new(&spec.out);
    let out = match config_path.parent() {
        Some(dir) if out.is_relative() => dir.join(out),
        _ => out.to_path_buf(),
    };
    let limit = initial
        .capture_limit
        .saturating_mul(crate::extract::decode::EXPANSION_FACTOR);
    tracing::info!(out = %out.display(), "learn mode: every exchange is copied (bounded) and learned from; the proposed rules are written at shutdown and shown by GET /learn on the admin port");
    Some(Arc::new(Learner::new(out, &initial.file.upstream, limit)))
}

/// Opens the spool. Another instance's lock always stops the start. Otherwise `strict` refuses
/// to start on a spool it cannot open, and `fast` never stays down for it: a file that is no
/// spool (truncated, corrupted) is moved aside to `spool.redb.corrupt-<unix time>` and a fresh
/// one started, said loudly (ERROR line, `userhook_spool_recreated_total`); a file that cannot
/// be opened for another reason (permissions, a full or failing disk) leaves the spool faulted
/// (deliveries refused, `/readyz` 503) while the writer keeps trying to open it.
fn open_spool(source: SpoolSource, strict: bool) -> Result<Spool, StartError> {
    let e = match Spool::open_source(source.clone()) {
        Ok(spool) => return Ok(spool),
        Err(e) if e.is_locked() => return Err(StartError::SpoolLocked(e)),
        Err(e) if strict => return Err(StartError::StrictSpool(e)),
        Err(e) => e,
    };
    let dir = match &source {
        SpoolSource::Dir(dir) | SpoolSource::Faulty(dir, _) => dir.clone(),
        SpoolSource::Memory => return Err(StartError::Spool(e)),
    };
    if e.kind() == SpoolErrorKind::Corrupt {
        match crate::events::spool::move_aside(&dir) {
            Ok(moved) => {
                crate::metrics::spool_recreated();
                tracing::error!(
                    error = %e,
                    moved_to = %moved.display(),
                    "the spool file cannot be opened; it was moved aside for inspection and a fresh, empty spool started (its pending deliveries and dead letters are in the moved file, not delivered)"
                );
                match Spool::open_source(source.clone()) {
                    Ok(spool) => return Ok(spool),
                    Err(again) => {
                        tracing::error!(error = %again, "the fresh spool cannot be opened either");
                    }
                }
            }
            Err(move_error) => {
                tracing::error!(error = %e, move_error = %move_error, "the spool file cannot be opened, nor moved aside");
            }
        }
    }
    tracing::error!(
        error = %e,
        "the spool cannot be opened: userhook serves requests, but every delivery is refused (recorded as failed) and /readyz answers 503 until it can be opened (retried every 2 s)"
    );
    Ok(Spool::unopened(source, &e))
}

/// A reloader for the cell that also resizes the user cache, so a reload from the file and
/// one through [`ServerHandle::apply`] have the same effect.
fn reloader(
    runtime: &Arc<ArcSwap<Snapshot>>,
    reloads: &Arc<ReloadStats>,
    extractor: &Arc<Extractor>,
) -> Reloader {
    let extractor = extractor.clone();
    Reloader::new(
        runtime.clone(),
        reloads.clone(),
        Box::new(move |next: &Snapshot| extractor.apply_limits(next)),
    )
}

/// The identity file of this config, loaded; when it cannot be opened (unreadable, corrupt,
/// its key file broken) userhook still serves, with identity in memory only, and says so.
fn open_identity(config_path: &std::path::Path, initial: &Snapshot) -> Arc<Identity> {
    let file = &initial.file;
    match Identity::open(config_path, file) {
        Ok(identity) => Arc::new(identity),
        Err(e) => {
            tracing::error!(error = %e, "identity is kept in memory only: the user cache and session index will not survive a restart");
            Arc::new(Identity::in_memory(
                crate::events::identity::max_users(file),
                file.identity.max_sessions,
            ))
        }
    }
}

/// `start` with the proxy on `workers` dedicated threads, then wait for SIGTERM/SIGINT and
/// drain.
pub async fn serve(options: Options, initial: Snapshot, workers: usize) -> Result<(), StartError> {
    let handle = start_on(options, initial, ProxyThreads::Dedicated(workers)).await?;
    crate::shutdown::termination_signal().await;
    handle.stop().await;
    tracing::info!("userhook stopped");
    Ok(())
}

/// `userhook learn`: [`serve`] with the spool and identity in memory (nothing is delivered,
/// nothing but the proposal is written), until SIGTERM/SIGINT, then the proposal is written.
pub async fn learn(options: Options, initial: Snapshot, workers: usize) -> Result<(), StartError> {
    let handle = start_with_spool(
        options,
        initial,
        ProxyThreads::Dedicated(workers),
        Some(SpoolSource::Memory),
    )
    .await?;
    crate::shutdown::termination_signal().await;
    handle.stop().await;
    tracing::info!("userhook learn stopped");
    Ok(())
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
