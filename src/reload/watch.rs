//! Noticing that the config file changed: the trigger half of hot reload.
//!
//! The watcher watches the file's *parent directory*, because editors replace a file by
//! renaming a new one over it and Kubernetes swaps a `..data` symlink (events name `..data`,
//! not the file). On any event it waits for the burst to settle, re-reads the path (following
//! symlinks), and sends the new text only if its hash differs from the last text sent. A slow
//! periodic re-hash covers missed events; SIGHUP always sends. The watcher only signals: it
//! never parses, validates or applies a config, and it never sends a file it could not read
//! (a file briefly missing during a swap is retried at the next event or tick).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher as _;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// How often the file is re-hashed even without events (inotify can miss ConfigMap swaps).
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(5);

/// A burst of events never delays a reload by more than this many debounce periods.
const MAX_DEBOUNCE_PERIODS: u32 = 10;

/// Why the config file cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Called outside a tokio runtime (a programming error, reported rather than a panic).
    #[error("the config watcher needs a tokio runtime")]
    NoRuntime,
    /// The file cannot be read for its baseline.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: String,
        /// What reading said.
        source: std::io::Error,
    },
    /// The operating system's file watcher would not start (inotify limits, for instance).
    #[error("cannot start the config file watcher: {0}")]
    Start(notify::Error),
    /// The file's directory cannot be watched.
    #[error("cannot watch directory {dir}: {source}")]
    Directory {
        /// The watched directory.
        dir: String,
        /// What the watcher said.
        source: notify::Error,
    },
}

/// "The config may have changed": the text to try, and why it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadTrigger {
    /// The file's full content, as read after the change.
    pub text: String,
    /// What caused the read: `"file changed"` or `"SIGHUP"`.
    pub reason: &'static str,
}

/// Starts watching `path`; triggers arrive on the returned receiver.
///
/// Must be called inside a tokio runtime. The content at start is the baseline: a trigger is
/// sent only when the content differs from the last content sent (or the baseline), except for
/// SIGHUP, which always sends. Dropping the receiver stops the watcher.
pub fn spawn_watcher(
    path: PathBuf,
    debounce: Duration,
) -> Result<mpsc::Receiver<ReloadTrigger>, WatchError> {
    start(path, debounce).map(|(rx, _task)| rx)
}

/// [`spawn_watcher`], also returning the task so tests can see it end.
fn start(
    path: PathBuf,
    debounce: Duration,
) -> Result<(mpsc::Receiver<ReloadTrigger>, tokio::task::JoinHandle<()>), WatchError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
    let dir = watched_dir(&path);
    let baseline = std::fs::read(&path).map_err(|source| WatchError::Read {
        path: path.display().to_string(),
        source,
    })?;

    // notify calls back on its own thread; a capacity of one coalesces bursts: if a wake-up
    // is already pending, the next one adds nothing.
    let (wake_tx, wake_rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = wake_tx.try_send(());
        }
    })
    .map_err(WatchError::Start)?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Directory {
            dir: dir.display().to_string(),
            source,
        })?;

    // Registered now, not in the task, so a SIGHUP right after this returns is not missed.
    let sighup = {
        let _guard = handle.enter();
        Hangup::register()
    };

    let (tx, rx) = mpsc::channel(4);
    let state = WatchState {
        path,
        last_hash: hash(&baseline),
        tx,
    };
    let task = handle.spawn(run(state, watcher, wake_rx, sighup, debounce));
    Ok((rx, task))
}

/// The directory whose entries decide what `path` reads as.
fn watched_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

struct WatchState {
    path: PathBuf,
    last_hash: [u8; 32],
    tx: mpsc::Sender<ReloadTrigger>,
}

impl WatchState {
    /// Re-reads the file and sends it if it changed (or always, when `forced`).
    /// Returns false when the receiver is gone.
    async fn check(&mut self, reason: &'static str, forced: bool) -> bool {
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "config file unreadable for now; will retry");
                return true;
            }
        };
        let h = hash(&bytes);
        if h == self.last_hash && !forced {
            return true;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                tracing::warn!(path = %self.path.display(), "config file is not UTF-8; ignored");
                // Remember it so the same bad content is not reported every tick.
                self.last_hash = h;
                return true;
            }
        };
        self.last_hash = h;
        self.tx.send(ReloadTrigger { text, reason }).await.is_ok()
    }
}

async fn run(
    mut state: WatchState,
    watcher: notify::RecommendedWatcher,
    mut wake: mpsc::Receiver<()>,
    mut sighup: Hangup,
    debounce: Duration,
) {
    // Owned here so the OS watch lives exactly as long as this task.
    let _watcher = watcher;
    let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rescan.tick().await; // the first tick is immediate; the baseline is already known
    let mut events_alive = true;
    loop {
        let keep_going = tokio::select! {
            _ = state.tx.closed() => false,
            woke = wake.recv(), if events_alive => {
                if woke.is_some() {
                    settle(&mut wake, debounce).await;
                } else {
                    // The notify thread is gone; the periodic re-hash still covers changes.
                    tracing::warn!("config file watcher stopped; relying on periodic checks");
                    events_alive = false;
                }
                state.check("file changed", false).await
            }
            _ = rescan.tick() => state.check("file changed", false).await,
            Some(()) = sighup.recv() => state.check("SIGHUP", true).await,
        };
        if !keep_going {
            break;
        }
    }
}

/// Waits until no event has arrived for `debounce`, at most a few periods in total.
async fn settle(wake: &mut mpsc::Receiver<()>, debounce: Duration) {
    let deadline = tokio::time::Instant::now() + debounce * MAX_DEBOUNCE_PERIODS;
    loop {
        let quiet_until = (tokio::time::Instant::now() + debounce).min(deadline);
        match tokio::time::timeout_at(quiet_until, wake.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => continue,
            _ => return,
        }
    }
}

/// SIGHUP where the platform has it (an operator's "reload now"); elsewhere, and when it
/// cannot be registered, a signal that never arrives (file events and the re-hash still work).
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Registers for SIGHUP; must run inside a tokio runtime.
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(s) => Hangup { signal: Some(s) },
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP reloads are unavailable");
                    Hangup { signal: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            Hangup {}
        }
    }

    /// The next SIGHUP, or never.
    async fn recv(&mut self) -> Option<()> {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal {
            return s.recv().await;
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::symlink;

    const DEBOUNCE: Duration = Duration::from_millis(50);
    const DEADLINE: Duration = Duration::from_secs(10);

    /// Waits for a trigger carrying `text`. Others are skipped: another test may send a
    /// SIGHUP to this process, which makes every running watcher send its current content.
    async fn wait_for(rx: &mut mpsc::Receiver<ReloadTrigger>, text: &str) -> ReloadTrigger {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(t) = rx.recv().await {
                if t.text == text {
                    return Some(t);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(t)) => t,
            other => panic!("no trigger with {text:?} before the deadline: {other:?}"),
        }
    }

    #[tokio::test]
    async fn rename_write_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "listen: a\n").unwrap();
        let mut rx = spawn_watcher(file.clone(), DEBOUNCE).unwrap();

        let tmp = dir.path().join(".userhook.yaml.swp");
        std::fs::write(&tmp, "listen: b\n").unwrap();
        std::fs::rename(&tmp, &file).unwrap();

        let t = wait_for(&mut rx, "listen: b\n").await;
        assert!(["file changed", "SIGHUP"].contains(&t.reason), "{t:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn configmap_symlink_swap_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2026_a")).unwrap();
        std::fs::write(d.join("..2026_a/userhook.yaml"), "version: a\n").unwrap();
        symlink("..2026_a", d.join("..data")).unwrap();
        symlink("..data/userhook.yaml", d.join("userhook.yaml")).unwrap();
        let mut rx = spawn_watcher(d.join("userhook.yaml"), DEBOUNCE).unwrap();

        std::fs::create_dir(d.join("..2026_b")).unwrap();
        std::fs::write(d.join("..2026_b/userhook.yaml"), "version: b\n").unwrap();
        symlink("..2026_b", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(d.join("..2026_a")).unwrap();

        wait_for(&mut rx, "version: b\n").await;
    }

    #[tokio::test]
    async fn unchanged_content_sends_nothing_then_a_change_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "same\n").unwrap();
        let mut rx = spawn_watcher(file.clone(), DEBOUNCE).unwrap();

        std::fs::write(&file, "same\n").unwrap();
        // A window of many debounce periods in which the touch must produce nothing.
        let quiet = tokio::time::timeout(DEBOUNCE * 20, async {
            loop {
                match rx.recv().await {
                    Some(t) if t.reason == "SIGHUP" => continue,
                    other => return other,
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "unexpected trigger: {quiet:?}");

        std::fs::write(&file, "different\n").unwrap();
        wait_for(&mut rx, "different\n").await;
    }

    #[tokio::test]
    async fn missing_file_is_retried_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "one\n").unwrap();
        let mut rx = spawn_watcher(file.clone(), DEBOUNCE).unwrap();

        std::fs::remove_file(&file).unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        std::fs::write(&file, "two\n").unwrap();

        wait_for(&mut rx, "two\n").await;
    }

    #[tokio::test]
    async fn sighup_always_sends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "unchanged\n").unwrap();
        let mut rx = spawn_watcher(file.clone(), DEBOUNCE).unwrap();

        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());

        let t = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("a trigger before the deadline")
            .expect("the watcher is running");
        assert_eq!(
            t,
            ReloadTrigger {
                text: "unchanged\n".into(),
                reason: "SIGHUP"
            }
        );
    }

    #[tokio::test]
    async fn dropping_the_receiver_stops_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "a\n").unwrap();
        let (rx, task) = start(file.clone(), DEBOUNCE).unwrap();
        drop(rx);
        let ended = tokio::time::timeout(DEADLINE, task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }

    #[test]
    fn needs_a_runtime() {
        let err = spawn_watcher(PathBuf::from("/nonexistent"), DEBOUNCE).unwrap_err();
        assert!(matches!(err, WatchError::NoRuntime), "{err}");
    }

    #[tokio::test]
    async fn unreadable_at_start_is_an_error() {
        let err = spawn_watcher(PathBuf::from("/nonexistent/userhook.yaml"), DEBOUNCE).unwrap_err();
        assert!(err.to_string().contains("cannot read config file"), "{err}");
    }
}
