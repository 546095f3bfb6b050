//! The web console (`GET /` on the admin port) in a real browser: headless Chromium from
//! Debian's packages loads it from the real binary after real traffic (README "Watch it
//! live"), once with the admin token in the URL fragment and once without. The test reads the
//! DOM the page built (`--dump-dom`, after `--virtual-time-budget` lets its scripts run) and
//! a screenshot (`--screenshot`), decoded here to check it is a PNG of the window's size that
//! shows something. No Chromium: the test fails and says to run `.ci/test-deps`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;
use support::eventually;
use support::live::{assert_no_canary, LiveRig, TOKEN};

const WAIT: Duration = Duration::from_secs(15);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 1400;

/// Chromium, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let names = ["chromium", "chromium-browser"];
    let mut dirs: Vec<PathBuf> = ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(path) = std::env::var("PATH") {
        dirs.extend(path.split(':').map(PathBuf::from));
    }
    for dir in &dirs {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium is not installed: the console test loads the page in a real headless browser. \
         Run `bash .ci/test-deps` (it runs `apt-get install -y chromium` on Debian/Ubuntu), or put chromium on PATH."
    );
}

/// What one headless run produced.
struct Page {
    dom: String,
    png: Vec<u8>,
}

/// Loads `url` in a fresh headless Chromium; the DOM after its scripts ran, and a screenshot.
async fn load(url: &str) -> Page {
    let profile = tempfile::tempdir().expect("profile dir");
    let shot = profile.path().join("shot.png");
    let child = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("data").display()
        ))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg("--virtual-time-budget=5000")
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {} ({e}): {stderr}", shot.display()));
    Page {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        png,
    }
}

/// The element with `id` in the dumped DOM, from its start tag to its end (`tag` names it).
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in the page:\n{dom}"));
    let rest = &dom[start..];
    let end = rest
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("<{tag} id=\"{id}\"> is not closed"));
    &rest[..end]
}

/// The rows of a table body, each as its cells' text joined with ` | `.
fn rows(dom: &str, id: &str) -> Vec<String> {
    let body = element(dom, "tbody", id);
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|c| text(c.split_once('>').map_or("", |(_, t)| t)))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

/// The text of an HTML fragment (tags dropped, the entities Chromium writes decoded).
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_live_events_records_and_dead_letters_in_chromium() {
    let browser = chromium();
    let rig = LiveRig::new().await;
    let bin = rig.start().await;
    let id = rig.create(&bin, "alice").await;
    rig.login(&bin, "alice").await;
    rig.delete(&bin, &id).await;
    let admin = rig.admin_url();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let get = |path: &str| {
        client
            .get(format!("{admin}{path}"))
            .bearer_auth(TOKEN)
            .send()
    };
    eventually(WAIT, "4 delivery records and 1 dead letter", || async {
        let d: serde_json::Value =
            serde_json::from_slice(&get("/deliveries").await.ok()?.bytes().await.ok()?).ok()?;
        let l: serde_json::Value =
            serde_json::from_slice(&get("/deadletters").await.ok()?.bytes().await.ok()?).ok()?;
        (d["deliveries"].as_array()?.len() == 4 && l["dead_letters"].as_array()?.len() == 1)
            .then_some(())
    })
    .await;
    // Endpoints other parts of userhook may offer: shown when they answer, else said so.
    let webhooks = get("/webhooks").await.expect("/webhooks").status();
    let learn = get("/learn").await.expect("/learn").status();

    let page = load(&format!("{admin}/#token={TOKEN}")).await;
    let dom = &page.dom;
    assert!(
        element(dom, "span", "status").contains("data-state=\"live\""),
        "the live feed is not connected:\n{dom}"
    );
    let live = rows(dom, "live-rows");
    assert_eq!(live.len(), 7, "{live:#?}");
    let has = |rows: &[String], want: &str| rows.iter().filter(|r| r.contains(want)).count();
    assert_eq!(has(&live, " | detected | "), 3, "{live:#?}");
    assert_eq!(
        has(&live, "detected | user.created | Email=alice@example.com ID=u-1 Name=alice ResetToken=<redacted> | POST /users 201 → ok-hook, dead-hook"),
        1,
        "{live:#?}"
    );
    assert_eq!(
        has(
            &live,
            "dead | user.created | ID=u-1 | dead-hook HTTP 400 attempt 1: HTTP 400: no thanks"
        ),
        1,
        "{live:#?}"
    );
    assert_eq!(has(&live, " | delivered | "), 3, "{live:#?}");
    // Newest first: the first item of the feed (alice's creation) is the bottom row.
    assert!(
        live[6].contains(" | detected | user.created | "),
        "{live:#?}"
    );
    assert_eq!(text(element(dom, "span", "live-count")), "7");

    let records = rows(dom, "deliveries-rows");
    assert_eq!(records.len(), 4, "{records:#?}");
    assert_eq!(has(&records, "| ok-hook | "), 3, "{records:#?}");
    assert_eq!(
        has(
            &records,
            "| dead-hook | user.created | u-1 | failed (HTTP 400) | 1 | HTTP 400: no thanks"
        ),
        1,
        "{records:#?}"
    );
    let letters = rows(dom, "deadletters-rows");
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert!(
        letters[0].contains("| dead-hook | user.created | ID=u-1 |"),
        "{letters:#?}"
    );
    assert!(letters[0].ends_with("| Replay"), "{letters:#?}");
    assert!(!element(dom, "button", "replay-all").contains("disabled"));
    let note = |id: &str| text(element(dom, "p", id));
    if webhooks == StatusCode::OK {
        let hooks = rows(dom, "webhooks-rows");
        assert!(
            hooks.iter().any(|r| r.starts_with("ok-hook | ")),
            "{hooks:#?}"
        );
    } else {
        assert_eq!(note("webhooks-note"), "not available: not found");
    }
    if learn == StatusCode::OK {
        assert!(!text(element(dom, "pre", "learn-yaml")).is_empty());
    } else {
        assert!(
            note("learn-note").starts_with("not available: "),
            "{}",
            note("learn-note")
        );
    }
    // The token form stayed hidden; the token is nowhere in the page.
    assert!(element(dom, "form", "login").contains(" hidden"), "{dom}");
    assert_no_canary("the console's DOM", dom);
    check_screenshot(&page.png, &browser);
    // To look at it: USERHOOK_CONSOLE_SCREENSHOT=/tmp/console.png cargo test --test console
    if let Ok(path) = std::env::var("USERHOOK_CONSOLE_SCREENSHOT") {
        std::fs::write(&path, &page.png).expect("write the screenshot");
    }

    // The page's Replay button sends what a browser sends for a same-origin fetch POST; the
    // admin access checks take it (and the token), and the dead letter goes back to pending.
    let letter: serde_json::Value = serde_json::from_slice(
        &get("/deadletters")
            .await
            .expect("list")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    let delivery = letter["dead_letters"][0]["delivery"]["id"]
        .as_str()
        .expect("id");
    let replay = client
        .post(format!("{admin}/deadletters/replay?id={delivery}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("origin", admin.as_str())
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .body("{}")
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.text().await.expect("body"), r#"{"replayed":1}"#);
    eventually(
        WAIT,
        "the replayed delivery reached dead-hook again",
        || async { (rig.dead.received().len() == 2).then_some(()) },
    )
    .await;

    // Without the token the page shows nothing but the form that asks for it.
    let bare = load(&format!("{admin}/")).await;
    let form = element(&bare.dom, "form", "login");
    assert!(
        !form.contains(" hidden"),
        "the token form is not shown:\n{}",
        bare.dom
    );
    assert!(text(element(&bare.dom, "span", "status")).contains("token needed"));
    assert!(rows(&bare.dom, "live-rows").is_empty());
    assert!(rows(&bare.dom, "deliveries-rows").is_empty());
    assert!(rows(&bare.dom, "deadletters-rows").is_empty());
    assert_no_canary("the console without a token", &bare.dom);
}

/// The screenshot is a PNG of the window's size, and not a blank page: many pixels differ
/// from the background and there are many colours (text, badges, table lines).
fn check_screenshot(png: &[u8], browser: &Path) {
    let (width, height, pixels) = decode_png(png);
    assert_eq!(
        (width, height),
        (WIDTH, HEIGHT),
        "screenshot size ({})",
        browser.display()
    );
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let other = pixels.len() - background;
    assert!(
        other * 100 >= pixels.len() * 5,
        "the screenshot is nearly blank: {other} of {} pixels differ from the background",
        pixels.len()
    );
    assert!(
        counts.len() >= 50,
        "only {} colours in the screenshot",
        counts.len()
    );
}

/// A minimal PNG decoder for what Chromium writes (8-bit RGB or RGBA, not interlaced): the
/// size and the pixels as RGB triples. Panics on anything else, with the reason.
fn decode_png(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    use std::io::Read as _;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let mut at = 8;
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
    let mut idat = Vec::new();
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("len")) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().expect("w"));
                height = u32::from_be_bytes(data[4..8].try_into().expect("h"));
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
                assert_eq!(data[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("inflate");
    let stride = width as usize * channels;
    assert_eq!(raw.len(), height as usize * (stride + 1), "pixel data size");
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width as usize * height as usize);
    for row in raw.chunks(stride + 1) {
        let filter = row[0];
        let mut cur = row[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 } as i16;
            let b = prev[i] as i16;
            let c = if i >= channels { prev[i - channels] } else { 0 } as i16;
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            cur[i] = cur[i].wrapping_add(add as u8);
        }
        for px in cur.chunks(channels) {
            pixels.push([px[0], px[1], px[2]]);
        }
        prev = cur;
    }
    (width, height, pixels)
}
