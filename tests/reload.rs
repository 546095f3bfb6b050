//! Hot reload: a valid change applies without a restart or a failed request; an invalid one
//! is refused and the running config stays.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use support::*;

/// Replaces `path` the way editors do: write a temp file beside it, rename it over.
fn rename_write(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn body_of(url: &str) -> Bytes {
    get(url).await.2
}

#[tokio::test]
async fn rename_write_switches_upstream() {
    let a = FakeUpstream::fixed("from A").await;
    let b = FakeUpstream::fixed("from B").await;
    let uh = Userhook::start(&config_for(&a.url(), ""), true).await;
    let url = format!("{}/x", uh.url());
    assert_eq!(body_of(&url).await, Bytes::from_static(b"from A"));

    rename_write(&uh.config_path, &config_for(&b.url(), ""));
    eventually(Duration::from_secs(10), "reload to upstream B", || {
        let url = url.clone();
        async move { (body_of(&url).await == Bytes::from_static(b"from B")).then_some(()) }
    })
    .await;
    assert_eq!(uh.handle.reloads.applied.load(Ordering::Relaxed), 1);
    uh.handle.stop().await;
}

#[tokio::test]
async fn invalid_file_is_refused_and_old_config_stays() {
    let a = FakeUpstream::fixed("from A").await;
    let b = FakeUpstream::fixed("from B").await;
    let uh = Userhook::start(&config_for(&a.url(), ""), true).await;
    let url = format!("{}/x", uh.url());

    // Unknown key plus a bad upstream: both must be reported, nothing applied.
    rename_write(&uh.config_path, &config_for(&b.url(), "no_such_key: 1\n"));
    eventually(Duration::from_secs(10), "rejected reload", || async {
        (uh.handle.reloads.rejected.load(Ordering::Relaxed) == 1).then_some(())
    })
    .await;
    assert_eq!(body_of(&url).await, Bytes::from_static(b"from A"));
    assert_eq!(uh.handle.reloads.applied.load(Ordering::Relaxed), 0);

    // The error names the key path.
    let errors = uh
        .handle
        .apply(&config_for(
            &b.url(),
            "routes:\n  - {action: creatd, method: POST, path: /users}\n",
        ))
        .expect_err("invalid action");
    let text = errors.to_string();
    assert!(text.contains("routes[0].action"), "{text}");
    assert!(text.contains("creatd"), "{text}");
    assert_eq!(body_of(&url).await, Bytes::from_static(b"from A"));

    // A fixed file applies.
    rename_write(&uh.config_path, &config_for(&b.url(), ""));
    eventually(Duration::from_secs(10), "reload to upstream B", || {
        let url = url.clone();
        async move { (body_of(&url).await == Bytes::from_static(b"from B")).then_some(()) }
    })
    .await;
    uh.handle.stop().await;
}

#[tokio::test]
async fn configmap_symlink_swap_is_seen() {
    let a = FakeUpstream::fixed("from A").await;
    let b = FakeUpstream::fixed("from B").await;
    // Kubernetes ConfigMap volume layout:
    //   userhook.yaml -> ..data/userhook.yaml, ..data -> ..2026_11_30_a
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = dir.path().join("..2026_11_30_a");
    std::fs::create_dir(&v1).expect("mkdir");
    std::fs::write(v1.join("userhook.yaml"), config_for(&a.url(), "")).expect("write");
    std::os::unix::fs::symlink("..2026_11_30_a", dir.path().join("..data")).expect("symlink data");
    std::os::unix::fs::symlink("..data/userhook.yaml", dir.path().join("userhook.yaml"))
        .expect("symlink file");
    let path = dir.path().join("userhook.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let runtime = userhook::snapshot::Snapshot::from_text(&text, None).expect("valid");
    let handle = userhook::app::start(
        userhook::app::Options {
            config_path: path.clone(),
            watch: true,
        },
        runtime,
    )
    .await
    .expect("start");
    let url = format!("http://{}/x", handle.proxy_addr);
    assert_eq!(body_of(&url).await, Bytes::from_static(b"from A"));

    // The kubelet writes a new timestamped dir and atomically renames a new ..data link over.
    let v2 = dir.path().join("..2026_11_30_b");
    std::fs::create_dir(&v2).expect("mkdir");
    std::fs::write(v2.join("userhook.yaml"), config_for(&b.url(), "")).expect("write");
    std::os::unix::fs::symlink("..2026_11_30_b", dir.path().join("..data_tmp"))
        .expect("symlink tmp");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("swap");
    std::fs::remove_dir_all(&v1).expect("remove old");

    eventually(Duration::from_secs(10), "reload after symlink swap", || {
        let url = url.clone();
        async move { (body_of(&url).await == Bytes::from_static(b"from B")).then_some(()) }
    })
    .await;
    handle.stop().await;
}

/// 50 reloads by file rename while 8 clients hammer the proxy: not one request may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_fail_no_request() {
    let a = FakeUpstream::fixed("from A").await;
    let b = FakeUpstream::fixed("from B").await;
    let uh = Userhook::start(&config_for(&a.url(), ""), true).await;
    let url = format!("{}/load", uh.url());

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let saw_a = Arc::new(AtomicU64::new(0));
    let saw_b = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (url, done, ok, failed, saw_a, saw_b) = (
            url.clone(),
            done.clone(),
            ok.clone(),
            failed.clone(),
            saw_a.clone(),
            saw_b.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = client();
            // Bounded: stops when the reloads are done, or after 200k requests at most.
            for _ in 0..200_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let req = http::Request::get(&url)
                    .body(full(Bytes::new()))
                    .expect("req");
                match client.request(req).await {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        use http_body_util::BodyExt;
                        match resp.into_body().collect().await.map(|c| c.to_bytes()) {
                            Ok(b) if &b[..] == b"from A" => {
                                saw_a.fetch_add(1, Ordering::Relaxed);
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(b) if &b[..] == b"from B" => {
                                saw_b.fetch_add(1, Ordering::Relaxed);
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    for i in 1..=50u64 {
        let target = if i % 2 == 1 { b.url() } else { a.url() };
        // The comment makes every version's content distinct.
        rename_write(
            &uh.config_path,
            &config_for(&target, &format!("# version {i}\n")),
        );
        eventually(Duration::from_secs(10), "reload applied", || async {
            (uh.handle.reloads.applied.load(Ordering::Relaxed) >= i).then_some(())
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("50 reloads: {ok} requests ok, {failed} failed");
    assert_eq!(failed, 0, "requests failed during reloads");
    assert!(ok > 100, "too little load to mean anything: {ok}");
    assert!(saw_a.load(Ordering::Relaxed) > 0 && saw_b.load(Ordering::Relaxed) > 0);
    assert_eq!(uh.handle.reloads.applied.load(Ordering::Relaxed), 50);
    assert_eq!(uh.handle.reloads.rejected.load(Ordering::Relaxed), 0);
    uh.handle.stop().await;
}
