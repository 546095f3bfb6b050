//! The README's first command must keep working: `userhook demo` walks a user through its
//! lifecycle and every configured webhook arrives.

#[test]
fn demo_runs_to_completion() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("demo")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo finished"), "{stdout}");
    for event in [
        "user.created",
        "user.updated",
        "user.login_failed",
        "user.login",
        "user.logout",
        "user.deleted",
    ] {
        assert!(
            stdout.contains(&format!("event   {event} ")),
            "no {event} in {stdout}"
        );
    }
    // DCE's WeCom robot example renders as written.
    assert!(
        stdout.contains(r#"{"msgtype":"text","text":{"content":"alice hello world"}}"#),
        "{stdout}"
    );
    // The demo password is only ever shown masked.
    assert!(!stdout.contains("wonderland\""), "{stdout}");
    assert!(!stdout.contains("rabbit-hole"), "{stdout}");
}
