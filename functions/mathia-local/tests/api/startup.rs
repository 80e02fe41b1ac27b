//! Settings read at start: a count or a period of zero, which would refuse everyone (no message,
//! frame, socket or page ever allowed) or panic the scheduler's timer, stops `mathia-local`
//! before it serves anything, with the setting named.

use std::{process::Stdio, time::Duration};

use tokio::process::Command;

use crate::emulator::free_port;

/// Runs `mathia-local` with one setting added and returns whether it exited, and what it said.
/// Nothing answers at its database address, so one whose settings are accepted stops there.
async fn start_with(name: &str, value: &str) -> Option<(bool, String)> {
    let child = Command::new(env!("CARGO_BIN_EXE_mathia-local"))
        .env("MATHIA_BIND", format!("127.0.0.1:{}", free_port()))
        .env("DATABASE_URL", format!("postgres://127.0.0.1:{}/nothing", free_port()))
        .env("MATHIA_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .env("RUST_LOG", "warn")
        .env(name, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mathia-local starts");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await.ok()?.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), said))
}

#[tokio::test]
async fn a_setting_of_zero_that_would_refuse_everyone_stops_the_start() {
    for name in [
        "MATHIA_SCHEDULER_INTERVAL_S",
        "MATHIA_CONNECTIONS_PER_ADDRESS",
        "MATHIA_SOCKETS_PER_PERSON",
        "MATHIA_WS_FRAMES_PER_S",
        "MATHIA_WS_FRAME_BURST",
        "MATHIA_RATE_LIMIT_PER_MIN",
        "MATHIA_HISTORY_PAGES_PER_MIN",
        "MATHIA_MODERATION_BATCH_SIZE",
        "MATHIA_AI_TIMEOUT_S",
    ] {
        let (ok, said) = start_with(name, "0").await.unwrap_or_else(|| panic!("{name}=0 was accepted"));
        assert!(!ok, "{name}=0: exited successfully: {said}");
        assert!(said.contains(&format!("{name} must be at least 1")), "{name}=0: {said}");
    }
    // A value that is not a number is refused the same way, named.
    let (ok, said) = start_with("MATHIA_SOCKETS_PER_PERSON", "many").await.expect("refused");
    assert!(!ok && said.contains("MATHIA_SOCKETS_PER_PERSON is not valid"), "{said}");
}

#[tokio::test]
async fn a_setting_of_one_is_accepted() {
    // The same start with 1 gets past the settings and the listener, to the database it cannot
    // reach.
    for name in ["MATHIA_SCHEDULER_INTERVAL_S", "MATHIA_CONNECTIONS_PER_ADDRESS"] {
        let (ok, said) = start_with(name, "1").await.unwrap_or_else(|| panic!("{name}=1: no answer"));
        assert!(!ok && said.contains("cannot reach Postgres"), "{name}=1: {said}");
        assert!(!said.contains(name), "{name}=1: {said}");
    }
}
