//! `userhook tail` against the real binary (README "Watch it live"): text lines and `--json`,
//! filters, `--replay`, the token from the config or the environment, a refusal that ends it
//! (exit 1, the instance's reason, no token echoed), a connection cut in the middle (it
//! reconnects with `Last-Event-ID`: nothing lost, nothing twice), an instance that is not up
//! yet (it keeps trying), and Ctrl-C (exit 0). No credential of the traffic in anything it
//! prints.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::eventually;
use support::live::{assert_no_canary, LiveRig, TOKEN};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const WAIT: Duration = Duration::from_secs(15);

/// A running `userhook tail` and what it printed.
struct Tail {
    child: tokio::process::Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    /// The readers of stdout and stderr: done once the process closed them.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Tail {
    fn start(config: &Path, args: &[&str], token: Option<&str>) -> Tail {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"));
        cmd.arg("tail")
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("USERHOOK_ADMIN_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.env("USERHOOK_ADMIN_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn userhook tail");
        let (out, r1) = collect(child.stdout.take().expect("stdout"));
        let (err, r2) = collect(child.stderr.take().expect("stderr"));
        Tail {
            child,
            out,
            err,
            readers: vec![r1, r2],
        }
    }

    fn lines(&self) -> Vec<String> {
        self.out.lock().expect("lock").clone()
    }

    fn errors(&self) -> String {
        self.err.lock().expect("lock").join("\n")
    }

    /// Waits for `n` lines on stdout.
    async fn wait_lines(&self, n: usize) -> Vec<String> {
        eventually(WAIT, &format!("{n} lines from tail"), || async {
            let lines = self.lines();
            (lines.len() >= n).then_some(lines)
        })
        .await
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit code.
    async fn interrupt(&mut self) -> Option<i32> {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill")
            .arg("-INT")
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
        self.exit().await
    }

    /// Waits for the exit code, and for everything it printed to be read.
    async fn exit(&mut self) -> Option<i32> {
        let code = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("tail exits")
            .expect("wait")
            .code();
        for r in self.readers.drain(..) {
            tokio::time::timeout(WAIT, r)
                .await
                .expect("output closed")
                .expect("reader");
        }
        code
    }
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = tokio::spawn(async move {
        let mut reader = BufReader::new(r).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().expect("lock").push(line);
        }
    });
    (lines, reader)
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_lines_and_json_filtered_and_stops_on_ctrl_c() {
    let rig = LiveRig::new().await;
    let bin = rig.start().await;
    let id = rig.create(&bin, "alice").await;
    rig.login(&bin, "alice").await;
    rig.delete(&bin, &id).await;

    // Found through the config's admin.listen; the token is the config's (`${…}` from the
    // environment). --replay all: what happened before it started, then live.
    let mut text = Tail::start(&rig.config, &["--replay", "all"], Some(TOKEN));
    let mut dead = Tail::start(
        &rig.config,
        &[
            "--json",
            "--replay=all",
            "--webhook",
            "dead-hook",
            "--outcome",
            "dead",
        ],
        Some(TOKEN),
    );
    let mut logins = Tail::start(
        Path::new("/nonexistent/userhook.yaml"),
        &[
            "--admin",
            &format!("{}/", rig.admin_url()),
            "--json",
            "--replay",
            "all",
            "--action",
            "login,created",
            "--user",
            "bob",
        ],
        Some(TOKEN),
    );

    let lines = text.wait_lines(7).await;
    let time = |l: &str| l.split(' ').next().unwrap_or("").to_owned();
    assert!(
        lines
            .iter()
            .all(|l| time(l).ends_with('Z') && time(l).len() == 24),
        "{lines:#?}"
    );
    let rest: BTreeSet<String> = lines
        .iter()
        .map(|l| l.split_once(' ').expect("time").1.to_owned())
        .collect();
    let want: BTreeSet<String> = [
        "detected  user.created       Email=alice@example.com ID=u-1 Name=alice ResetToken=<redacted>  POST /users 201 -> ok-hook, dead-hook",
        "delivered ok-hook            user.created user=u-1 HTTP 200 attempt 1",
        "dead      dead-hook          user.created user=u-1 HTTP 400 attempt 1: HTTP 400: no thanks",
        "detected  user.login         Email=alice@example.com ID=u-1 Name=alice ResetToken=<redacted>  POST /login 200 -> ok-hook",
        "delivered ok-hook            user.login user=u-1 HTTP 200 attempt 1",
        "detected  user.deleted       Email=alice@example.com ID=u-1 Name=alice ResetToken=<redacted>  DELETE /users/u-1 204 -> ok-hook",
        "delivered ok-hook            user.deleted user=u-1 HTTP 200 attempt 1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(rest, want, "{lines:#?}");

    let d = dead.wait_lines(1).await;
    let v = json(&d[0]);
    assert_eq!(
        (
            v["kind"].as_str(),
            v["webhook"].as_str(),
            v["outcome"].as_str(),
            v["status"].as_u64()
        ),
        (Some("delivery"), Some("dead-hook"), Some("dead"), Some(400))
    );
    // Sentinels: bob's creation and login. The dead-letter tail's next line is bob's; the
    // login tail (bob only, created or login) shows exactly his five items.
    rig.create(&bin, "bob").await;
    rig.login(&bin, "bob").await;
    let d = dead.wait_lines(2).await;
    assert_eq!(json(&d[1])["user_id"], "u-2");
    let l = logins.wait_lines(5).await;
    let kinds: Vec<(String, String)> = l
        .iter()
        .map(|l| {
            let v = json(l);
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            (s("kind"), s("action"))
        })
        .collect();
    let detected = kinds.iter().filter(|k| k.0 == "detected").count();
    assert_eq!(detected, 2, "{l:#?}");
    assert!(
        kinds.iter().all(|k| k.1 == "created" || k.1 == "login"),
        "{l:#?}"
    );
    assert!(l.iter().all(|l| !l.contains("alice")), "{l:#?}");
    let text_lines = text.wait_lines(7 + 5).await;

    for t in [&mut text, &mut dead, &mut logins] {
        assert_eq!(t.interrupt().await, Some(0), "{}", t.errors());
    }
    for (name, t) in [("text", &text), ("dead", &dead), ("logins", &logins)] {
        let all = format!("{}\n{}", t.lines().join("\n"), t.errors());
        assert_no_canary(&format!("tail ({name})"), &all);
        assert_eq!(t.errors(), "", "nothing went wrong, so nothing on stderr");
    }
    assert!(text_lines.len() >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_ends_tail_with_the_reason_and_a_bad_config_is_said() {
    let rig = LiveRig::new().await;
    let _bin = rig.start().await;
    let wrong = "a-wrong-token-that-is-long-enough";
    let mut t = Tail::start(
        Path::new("/nonexistent.yaml"),
        &["--admin", &rig.admin_url()],
        Some(wrong),
    );
    assert_eq!(t.exit().await, Some(1));
    let err = t.errors();
    assert!(
        err.contains("answered 401 Unauthorized: the bearer token does not match admin.token"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(TOKEN), "{err}");
    // No token at all: told where to put one.
    let mut t = Tail::start(
        Path::new("/nonexistent.yaml"),
        &["--admin", &rig.admin_url()],
        None,
    );
    assert_eq!(t.exit().await, Some(1));
    assert!(
        t.errors().contains("set USERHOOK_ADMIN_TOKEN"),
        "{}",
        t.errors()
    );
    // A bad filter is the instance's 400 (clap catches the CLI's own spelling first).
    let mut t = Tail::start(&rig.config, &["--action", "create"], Some(TOKEN));
    assert_eq!(t.exit().await, Some(2));
    assert!(
        t.errors().contains("did you mean `created`"),
        "{}",
        t.errors()
    );
    let mut t = Tail::start(Path::new("/nonexistent.yaml"), &[], Some(TOKEN));
    assert_eq!(t.exit().await, Some(2));
    assert!(t.errors().contains("/nonexistent.yaml"), "{}", t.errors());
}

/// A TCP relay between tail and the admin API that the test can cut and hold shut.
struct Relay {
    addr: SocketAddr,
    open: Arc<Mutex<bool>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accepted: Arc<Mutex<usize>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let open = Arc::new(Mutex::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accepted = Arc::new(Mutex::new(0));
        let (open2, conns2, accepted2) = (open.clone(), conns.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                *accepted2.lock().expect("lock") += 1;
                if !*open2.lock().expect("lock") {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().expect("lock").push(task.abort_handle());
            }
        });
        Relay {
            addr,
            open,
            conns,
            accepted,
        }
    }

    /// Drops every connection and refuses new ones until [`Relay::reopen`].
    fn cut(&self) {
        *self.open.lock().expect("lock") = false;
        for c in self.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn reopen(&self) {
        *self.open.lock().expect("lock") = true;
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().expect("lock")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_reconnects_with_last_event_id_and_loses_nothing() {
    let rig = LiveRig::new().await;
    // Started before the instance (through a relay the test can cut): it keeps trying until
    // the instance is up, then replays what it kept (--replay all), so nothing is missed.
    let admin: SocketAddr = format!("127.0.0.1:{}", rig.admin_port)
        .parse()
        .expect("addr");
    let relay = Relay::start(admin).await;
    let mut tail = Tail::start(
        Path::new("/nonexistent.yaml"),
        &[
            "--json",
            "--replay",
            "all",
            "--admin",
            &format!("http://{}", relay.addr),
        ],
        Some(TOKEN),
    );
    let retries = |t: &Tail| t.errors().matches("reconnecting in").count();
    eventually(WAIT, "tail retrying while nothing listens", || async {
        (retries(&tail) > 0).then_some(())
    })
    .await;
    assert!(
        tail.errors().contains("cannot reach http://"),
        "{}",
        tail.errors()
    );
    let bin = rig.start().await;
    rig.login(&bin, "before1").await;
    rig.login(&bin, "before2").await;
    eventually(WAIT, "the befores and their outcomes", || async {
        (tail.lines().len() == 4).then_some(())
    })
    .await;

    // Cut, and keep it shut while events happen.
    let before_cut = retries(&tail);
    relay.cut();
    eventually(WAIT, "tail noticed the cut", || async {
        (retries(&tail) > before_cut).then_some(())
    })
    .await;
    let tries = relay.accepted();
    rig.login(&bin, "during1").await;
    rig.login(&bin, "during2").await;
    eventually(WAIT, "tail retried against the closed relay", || async {
        (relay.accepted() > tries).then_some(())
    })
    .await;
    relay.reopen();
    rig.login(&bin, "after").await;

    let all = tail.wait_lines(10).await;
    let items: Vec<Value> = all.iter().map(|l| json(l)).collect();
    let detected: Vec<&Value> = items.iter().filter(|v| v["kind"] == "detected").collect();
    let names: Vec<&str> = detected
        .iter()
        .map(|v| v["user"]["Name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["before1", "before2", "during1", "during2", "after"],
        "{all:#?}"
    );
    // Nothing twice: every event once, every delivery outcome once, in feed order.
    let seqs: Vec<u64> = detected
        .iter()
        .map(|v| v["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let deliveries: BTreeSet<&str> = items
        .iter()
        .filter(|v| v["kind"] == "delivery" && v["outcome"] == "delivered")
        .map(|v| v["delivery_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(deliveries.len(), 5, "{all:#?}");
    let err = tail.errors();
    assert!(err.contains("reconnected to http://"), "{err}");
    assert!(err.contains("resuming after "), "{err}");
    // Ctrl-C while connected: exit 0, and nothing more was printed than the ten items.
    assert_eq!(tail.interrupt().await, Some(0), "{err}");
    assert_eq!(tail.lines().len(), 10, "{:#?}", tail.lines());
    assert_no_canary("tail --json", &format!("{}\n{err}", all.join("\n")));
}
