//! Noticing that the config file changed: the trigger half of hot reload.
//!
//! The watcher watches the file's *parent directory*, because editors replace a file by
//! renaming a new one over it and Kubernetes swaps a `..data` symlink (events name `..data`,
//! not the file). On an event that can change what the path reads as (a write, create,
//! rename or remove of the file itself or of a `..`-named Kubernetes entry), it waits for the
//! burst to settle, re-reads the path (following symlinks), and sends the new text only if its
//! hash differs from the last text sent. Reads are not changes: the OPEN, ACCESS and
//! CLOSE_NOWRITE events its own read causes (or anyone else's) are ignored (CLOSE_WRITE is not), so an idle
//! instance never reads the file. Every [`RESCAN_INTERVAL`] a timer compares the file's
//! metadata (size, modification time, inode) with what was last read and re-reads only when
//! it differs, which covers missed events (inotify can miss ConfigMap swaps); SIGHUP always
//! reads and sends. Each read is counted in `userhook_config_file_reads_total`. The watcher
//! only signals: it never parses, validates or applies a config, and it never sends a file it
//! could not read (a file briefly missing during a swap is retried at the next event or tick).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher as _;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// How often the file's metadata is compared with what was last read, even without events
/// (inotify can miss ConfigMap swaps); the file is re-read only when the metadata changed.
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
    start(path, debounce, RESCAN_INTERVAL).map(|w| w.triggers)
}

/// A started watcher, with what tests look at.
struct Started {
    triggers: mpsc::Receiver<ReloadTrigger>,
    #[cfg_attr(not(test), allow(dead_code))]
    task: tokio::task::JoinHandle<()>,
    /// Reads of the file since the baseline that were not asked for by SIGHUP (tests in this
    /// process send SIGHUP to it).
    #[cfg_attr(not(test), allow(dead_code))]
    reads: Arc<AtomicU64>,
}

/// [`spawn_watcher`] with the re-check interval chosen, also returning the task and the read
/// count so tests can see them.
fn start(path: PathBuf, debounce: Duration, rescan: Duration) -> Result<Started, WatchError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
    let dir = watched_dir(&path);
    let read_error = |source| WatchError::Read {
        path: path.display().to_string(),
        source,
    };
    let fingerprint = Fingerprint::of(&path).map_err(read_error)?;
    let baseline = std::fs::read(&path).map_err(read_error)?;

    // notify calls back on its own thread; a capacity of one coalesces bursts: if a wake-up
    // is already pending, the next one adds nothing.
    let (wake_tx, wake_rx) = mpsc::channel::<()>(1);
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|event| may_change(&event, name.as_deref())) {
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
    let reads = Arc::new(AtomicU64::new(0));
    let state = WatchState {
        path,
        last_hash: hash(&baseline),
        last_seen: Some(fingerprint),
        reads: reads.clone(),
        tx,
    };
    let task = handle.spawn(run(state, watcher, wake_rx, sighup, debounce, rescan));
    Ok(Started {
        triggers: rx,
        task,
        reads,
    })
}

/// Whether a file event can change what the config path reads as. Accesses (OPEN, ACCESS,
/// CLOSE_NOWRITE: reads, the watcher's own included) never can. Of the rest, only events
/// about the file's own name, or a `..`-named entry (Kubernetes' `..data` symlink and its
/// timestamped directories), or none in particular (an overflow asking for a rescan) count.
fn may_change(event: &notify::Event, name: Option<&std::ffi::OsStr>) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match event.kind {
        // A writer closing the file: its content may be new.
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        notify::EventKind::Access(_) => return false,
        _ => {}
    }
    if event.paths.is_empty() || event.need_rescan() {
        return true;
    }
    event.paths.iter().any(|p| match p.file_name() {
        Some(n) => Some(n) == name || n.as_encoded_bytes().starts_with(b".."),
        None => true,
    })
}

/// What the file's metadata says about its content without reading it: size, modification
/// time and (on Unix) device, inode and change time. A swap, a rename over it or a write
/// changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

impl Fingerprint {
    /// The fingerprint of what `path` reads as (symlinks followed).
    fn of(path: &Path) -> std::io::Result<Fingerprint> {
        let m = std::fs::metadata(path)?;
        Ok(Fingerprint {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
            },
        })
    }
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
    /// The metadata of the file when it was last read (`None`: unreadable then).
    last_seen: Option<Fingerprint>,
    /// Reads caused by events and the timer (not SIGHUP).
    reads: Arc<AtomicU64>,
    tx: mpsc::Sender<ReloadTrigger>,
}

/// Why the file is read: the metric's `trigger` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// A file event that may have changed it.
    Change,
    /// The timer found its metadata changed.
    Timer,
    /// SIGHUP: read and send whatever it holds.
    Sighup,
}

impl WatchState {
    /// The timer's check: re-read only when the metadata differs from the last read.
    async fn recheck(&mut self) -> bool {
        let path = self.path.clone();
        let now = tokio::task::spawn_blocking(move || Fingerprint::of(&path).ok())
            .await
            .ok()
            .flatten();
        if now.is_some() && now == self.last_seen {
            return true;
        }
        self.check(Cause::Timer).await
    }

    /// Re-reads the file and sends it if it changed (or always, on SIGHUP).
    /// Returns false when the receiver is gone.
    async fn check(&mut self, cause: Cause) -> bool {
        let (reason, forced, label) = match cause {
            Cause::Change => ("file changed", false, "change"),
            Cause::Timer => ("file changed", false, "timer"),
            Cause::Sighup => ("SIGHUP", true, "sighup"),
        };
        if cause != Cause::Sighup {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        crate::metrics::config_file_read(label);
        tracing::debug!(path = %self.path.display(), trigger = label, "reading the config file");
        // Read and hashed on the blocking pool: a large file must not hold up the runtime
        // thread (on `serve`, the first proxy worker's).
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || {
            // Taken before the read: a change racing the read shows at the next tick.
            let seen = Fingerprint::of(&path).ok();
            std::fs::read(&path).map(|bytes| (seen, hash(&bytes), bytes))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let (seen, h, bytes) = match read {
            Ok(read) => read,
            Err(e) => {
                self.last_seen = None;
                tracing::debug!(path = %self.path.display(), error = %e, "config file unreadable for now; will retry");
                return true;
            }
        };
        self.last_seen = seen;
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
    rescan_every: Duration,
) {
    // Owned here so the OS watch lives exactly as long as this task.
    let _watcher = watcher;
    let mut rescan = tokio::time::interval(rescan_every);
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
                state.check(Cause::Change).await
            }
            _ = rescan.tick() => state.recheck().await,
            Some(()) = sighup.recv() => state.check(Cause::Sighup).await,
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
        let w = start(file.clone(), DEBOUNCE, RESCAN_INTERVAL).unwrap();
        drop(w.triggers);
        let ended = tokio::time::timeout(DEADLINE, w.task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }

    /// Reads the watcher made so far.
    fn reads(w: &Started) -> u64 {
        w.reads.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn reads_are_not_changes_an_idle_watcher_reads_nothing() {
        // It once woke on its own reads (OPEN/ACCESS/CLOSE_NOWRITE) and re-read and hashed
        // the file every ~205 ms forever.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "idle: 1\n").unwrap();
        // A short re-check interval: the timer runs many times in the window below, and
        // must find the metadata unchanged each time.
        let mut w = start(file.clone(), DEBOUNCE, Duration::from_millis(40)).unwrap();
        // Others reading the file (`cat`, a backup agent) are not changes either; nor are
        // writes to other files beside it.
        for _ in 0..5 {
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "idle: 1\n");
        }
        std::fs::write(dir.path().join("unrelated.log"), "x").unwrap();
        // An idle window of many debounce periods and re-check ticks.
        let start_at = std::time::Instant::now();
        while start_at.elapsed() < DEBOUNCE * 20 {
            assert_eq!(reads(&w), 0, "an idle watcher read the file");
            tokio::time::sleep(DEBOUNCE / 2).await;
        }
        assert_eq!(reads(&w), 0, "an idle watcher read the file");
        // Only another test's SIGHUP may have sent something.
        while let Ok(t) = w.triggers.try_recv() {
            assert_eq!(t.reason, "SIGHUP", "{t:?}");
        }

        // A real change is read (once per settled burst) and sent.
        std::fs::write(&file, "idle: 2\n").unwrap();
        wait_for(&mut w.triggers, "idle: 2\n").await;
        // The timer and the file event may both have seen the change (two reads, one
        // trigger): let them settle before counting.
        let mut after_change = reads(&w);
        let settled = std::time::Instant::now() + DEADLINE;
        loop {
            tokio::time::sleep(DEBOUNCE * 4).await;
            let now = reads(&w);
            if now == after_change || std::time::Instant::now() > settled {
                break;
            }
            after_change = now;
        }
        assert!(
            (1..=2).contains(&after_change),
            "{after_change} reads for one change"
        );
        // ... and its own read of the change wakes nothing more.
        let quiet_from = std::time::Instant::now();
        while quiet_from.elapsed() < DEBOUNCE * 20 {
            tokio::time::sleep(DEBOUNCE / 2).await;
        }
        assert_eq!(
            reads(&w),
            after_change,
            "the watcher woke itself on its own read"
        );
    }

    #[test]
    fn fingerprint_changes_with_content_and_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userhook.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        let first = Fingerprint::of(&file).unwrap();
        let _ = std::fs::read(&file).unwrap();
        assert_eq!(
            Fingerprint::of(&file).unwrap(),
            first,
            "a read changes nothing"
        );
        std::fs::write(&file, "a: 22\n").unwrap();
        let second = Fingerprint::of(&file).unwrap();
        assert_ne!(second, first, "a longer write");
        // Same size, put in place by a rename (what editors and kubelets do).
        let tmp = dir.path().join(".tmp");
        std::fs::write(&tmp, "a: 33\n").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_ne!(
            Fingerprint::of(&file).unwrap(),
            second,
            "a swap of equal size"
        );
    }

    #[test]
    fn accesses_and_other_names_do_not_wake() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
        use notify::{Event, EventKind};
        let name = Some(std::ffi::OsStr::new("userhook.yaml"));
        let at = |kind: EventKind, p: &str| Event::new(kind).add_path(PathBuf::from(p));
        for access in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
        ] {
            assert!(!may_change(
                &at(EventKind::Access(access), "/c/userhook.yaml"),
                name
            ));
        }
        let close_write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(may_change(&at(close_write, "/c/userhook.yaml"), name));
        assert!(may_change(
            &at(EventKind::Modify(ModifyKind::Any), "/c/userhook.yaml"),
            name
        ));
        assert!(may_change(
            &at(EventKind::Create(CreateKind::File), "/c/..data"),
            name
        ));
        assert!(may_change(
            &at(EventKind::Create(CreateKind::Any), "/c/..2026_b"),
            name
        ));
        assert!(!may_change(
            &at(EventKind::Modify(ModifyKind::Any), "/c/other.log"),
            name
        ));
        assert!(may_change(&Event::new(EventKind::Any), name));
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
