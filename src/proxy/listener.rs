//! The proxy's listener: accepting client connections and the worker threads that serve them.
//!
//! With [`ProxyThreads::Dedicated`], each worker is a single-threaded runtime with its own
//! `SO_REUSEPORT` socket and its own upstream pool, as nginx runs one worker per core. On
//! shutdown each accept loop stops, open connections drain within the grace period, and the
//! ones still open after it are closed. This module serves connections; what a request does is
//! `service`'s business, and it must never look at one.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use super::edge::{self, AcceptBackoff};
use super::first_head;
use super::served::Served;
use super::service::{ProxyService, ProxyShared};
use super::tls::{ListenerTls, TlsListenError};
use super::watch::{Activity, Clock, Drained, Verdict, WatchedIo};
use crate::metrics::ClientFault;
use crate::shutdown::ShutdownSignal;
use crate::snapshot::Snapshot;

/// Why the proxy could not start serving; the text is the operator's.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The listening socket could not be taken off this runtime for a worker's.
    #[error("{0}")]
    Detach(io::Error),
    /// The operating system would not start a worker thread.
    #[error("cannot start proxy worker thread: {0}")]
    Thread(io::Error),
    /// The first listener's address could not be read, so no other could bind it.
    #[error("cannot read the proxy's address: {0}")]
    Address(io::Error),
    /// The `tls` certificate pair could not be loaded.
    #[error("cannot use the TLS certificate (tls): {0}")]
    Tls(#[from] TlsListenError),
    /// A further worker's `SO_REUSEPORT` listener could not bind.
    #[error("cannot listen on {addr} (listen): {reason}")]
    Bind {
        /// The proxy's address.
        addr: SocketAddr,
        /// What binding said.
        reason: io::Error,
    },
}

/// Where the proxy's accept loops and connections run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyThreads {
    /// On the runtime that called `app::start` (tests, the demo).
    Caller,
    /// On N threads, each a single-threaded runtime with its own `SO_REUSEPORT` listener and
    /// its own upstream pool, as nginx runs one worker per core: no work stealing, no shared
    /// pool lock on the request path. The first worker is the calling thread itself, which
    /// should be a current-thread runtime: detection and delivery then share it, so with one
    /// worker a request never costs a cross-thread wakeup.
    Dedicated(usize),
}

/// Binds `addr` with `SO_REUSEPORT`, so several threads can each accept on their own socket
/// and the kernel spreads connections between them.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
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
pub fn spawn_proxy_thread(
    index: usize,
    listener: TcpListener,
    shared: Arc<ProxyShared>,
    runtime: Arc<ArcSwap<Snapshot>>,
    tls: Option<Arc<ListenerTls>>,
    signal: ShutdownSignal,
) -> Result<tokio::sync::oneshot::Receiver<()>, ListenError> {
    let listener = listener.into_std().map_err(ListenError::Detach)?;
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
                    Ok(listener) => serve_proxy(listener, shared, runtime, tls, signal).await,
                    Err(e) => tracing::error!(error = %e, "proxy worker cannot use its listener"),
                }
            });
            let _ = done_tx.send(());
        })
        .map_err(ListenError::Thread)?;
    Ok(done_rx)
}

/// Accepts client connections until shutdown, then lets open ones finish within the grace.
pub async fn serve_proxy(
    listener: TcpListener,
    shared: Arc<ProxyShared>,
    runtime: Arc<ArcSwap<Snapshot>>,
    tls: Option<Arc<ListenerTls>>,
    mut signal: ShutdownSignal,
) {
    // The `client` limits are read once: a change needs a restart, like `listen`.
    let (builder, max_connections, handshake_timeout, clock, max_head) = {
        let snapshot = runtime.load();
        let client = &snapshot.file.client;
        (
            Arc::new(edge::builder(client)),
            client.max_connections,
            client.header_timeout.0,
            Clock::new(client.header_timeout.0, client.idle_timeout.0),
            usize::try_from(client.max_header_bytes.0).unwrap_or(usize::MAX),
        )
    };
    let mut backoff = AcceptBackoff::default();
    // Connections are owned here so the ones still open when the grace period ends can be
    // closed for real (each holds the extractor's sender, which `stop` waits on).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning,
                    // and say so at most once a second.
                    let pause = backoff.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = signal.recv() => break,
                    }
                }
            },
            _ = signal.recv() => break,
        };
        backoff.succeeded();
        // Past the limit the connection is closed at once (a reset-free FIN): open ones keep
        // being served, and the client may retry.
        let Some(admitted) = shared.connections.admit(max_connections) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let served = if let Some(tls) = &tls {
            // The handshake runs on the connection's own task, within the head timeout.
            let (acceptor, builder) = (tls.acceptor(), builder.clone());
            let service = ProxyService::new(
                shared.clone(),
                remote,
                &crate::headers::PROTO_HTTPS,
                activity.clone(),
            );
            let activity = activity.clone();
            connections.spawn(async move {
                let _admitted = admitted;
                let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        crate::metrics::client_error(ClientFault::TlsHandshake);
                        edge::log_client_fault(ClientFault::TlsHandshake, &e);
                        return;
                    }
                    Err(_) => {
                        crate::metrics::client_error(ClientFault::HeaderTimeout);
                        return;
                    }
                };
                let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let mut io = WatchedIo::new(stream, activity.clone());
                let h2 = if alpn_h2 {
                    true
                } else {
                    match first_head::read(&mut io, max_head).await {
                        Some(head) => {
                            let h2 = first_head::is_h2_start(&head);
                            io.replay(head);
                            h2
                        }
                        None => return,
                    }
                };
                let conn = Served::new(&builder, io, service, h2);
                ended(
                    Drained::new(conn, activity, Served::graceful_shutdown).await,
                    remote,
                );
            })
        } else {
            let service = ProxyService::new(
                shared.clone(),
                remote,
                &crate::headers::PROTO_HTTP,
                activity.clone(),
            );
            let builder = builder.clone();
            let mut io = WatchedIo::new(stream, activity.clone());
            let drain = activity.clone();
            connections.spawn(async move {
                let _admitted = admitted;
                // Until its first head is in, a connection holds a small buffer, not hyper's.
                let Some(head) = first_head::read(&mut io, max_head).await else {
                    return;
                };
                let h2 = first_head::is_h2_start(&head);
                io.replay(head);
                // Boxed (in `Served`): the task stays small while it waits for the head.
                let conn = Served::new(&builder, io, service, h2);
                ended(
                    Drained::new(conn, drain, Served::graceful_shutdown).await,
                    remote,
                );
            })
        };
        // The clock runs beside the connection, never inside it: a connection's own polls
        // pay nothing for it.
        tokio::spawn(watch(served, activity, clock, signal.clone()));
    }
    drop(listener);
    // Each connection's clock has seen the signal too and started its graceful close.
    let grace = runtime.load().file.timeouts.shutdown_grace.0;
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() {
                tracing::info!("all client connections drained");
                break;
            },
            _ = &mut deadline => {
                tracing::warn!(
                    grace = %humantime::format_duration(grace),
                    open = connections.len(),
                    "grace period over; closing remaining connections"
                );
                connections.abort_all();
                while connections.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// One connection's clock: ticks until the connection has ended, and closes it (drops its
/// task) when a head is too slow (counted as the client's), HTTP/2 control frames flood in
/// (counted), or it sat idle too long (not a fault). At shutdown it starts the connection's
/// graceful close, and keeps ticking until the connection is gone.
async fn watch(
    connection: tokio::task::AbortHandle,
    activity: Arc<Activity>,
    clock: Clock,
    mut shutdown: ShutdownSignal,
) {
    let mut ticks = tokio::time::interval(clock.tick());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.reset();
    let mut control_frames = 0;
    let mut draining = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.recv(), if !draining => {
                draining = true;
                activity.drain();
                continue;
            }
        }
        if connection.is_finished() {
            return;
        }
        let fault = match clock.judge(&activity, &mut control_frames) {
            Verdict::Fine => continue,
            Verdict::Idle => None,
            Verdict::HeadTimeout => Some((
                ClientFault::HeaderTimeout,
                "the request head did not arrive in time",
            )),
            Verdict::ControlFlood => Some((
                ClientFault::ControlFlood,
                "too many HTTP/2 SETTINGS and PING frames",
            )),
        };
        if let Some((fault, detail)) = fault {
            crate::metrics::client_error(fault);
            edge::log_client_fault(fault, &detail);
        }
        connection.abort();
        return;
    }
}

/// Counts and logs how a client connection ended: the client's faults (a slow or large
/// head) as such, at most once a second; anything else at debug.
fn ended(result: Result<(), hyper::Error>, remote: SocketAddr) {
    let Err(e) = result else {
        return;
    };
    match edge::connection_fault(&e) {
        Some(fault) => {
            crate::metrics::client_error(fault);
            edge::log_client_fault(fault, &e);
        }
        None => tracing::debug!(error = %e, %remote, "client connection ended with an error"),
    }
}

/// Serves `listener` as `threads` says: on the caller's runtime, or on N workers (the first
/// one on the caller's runtime, the others on threads of their own, each with a listener of
/// its own on the same address). The returned tasks end when every connection has drained.
pub fn serve(
    listener: TcpListener,
    threads: ProxyThreads,
    shared: Arc<ProxyShared>,
    runtime: Arc<ArcSwap<Snapshot>>,
    signal: ShutdownSignal,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ListenError> {
    let workers = match threads {
        ProxyThreads::Caller => 1,
        ProxyThreads::Dedicated(n) => n.max(1),
    };
    let addr = listener.local_addr().map_err(ListenError::Address)?;
    let tls = ListenerTls::load(&runtime.load().file.tls)?;
    let mut tasks = vec![tokio::spawn(serve_proxy(
        listener,
        shared.clone(),
        runtime.clone(),
        tls.clone(),
        signal.clone(),
    ))];
    if let Some(tls) = &tls {
        tasks.push(tokio::spawn(tls.clone().watch(signal.clone())));
    }
    for index in 1..workers {
        let listener = bind_reuseport(addr).map_err(|reason| ListenError::Bind { addr, reason })?;
        let done = spawn_proxy_thread(
            index,
            listener,
            shared.clone(),
            runtime.clone(),
            tls.clone(),
            signal.clone(),
        )?;
        tasks.push(tokio::spawn(async move {
            let _ = done.await;
        }));
    }
    Ok(tasks)
}
