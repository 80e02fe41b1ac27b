//! Guessing passwords: wrong attempts are counted per account and per address (a sliding minute
//! in Redis), and a full Argon2 queue refuses at once instead of making everyone wait; each
//! address has a share of that queue of its own.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::TestApp;

const PASSWORD: &str = "correct horse battery";

async fn login(t: &TestApp, email: &str, password: &str) -> reqwest::Response {
    t.post(None, "/api/auth/login", json!({"email": email, "password": password})).await
}

#[tokio::test]
async fn the_eleventh_wrong_password_in_a_minute_locks_the_account_even_for_the_right_one() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    for _ in 0..10 {
        assert_eq!(login(&t, &ana.email, "wrong password").await.status(), 401);
    }
    let refused = login(&t, &ana.email, PASSWORD).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry} s");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The same e-mail spelt differently is the same account.
    assert_eq!(login(&t, &ana.email.to_uppercase(), PASSWORD).await.status(), 429);
    // Another account is not affected.
    assert_eq!(login(&t, &ben.email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn wrong_passwords_across_accounts_from_one_address_are_throttled() {
    let t = TestApp::spawn_with(|c| c.login_failures_per_address = 20).await;
    let ana = t.register("Ana").await;
    for i in 0..20 {
        let res = login(&t, &format!("nobody-{i}@example.com"), "guess").await;
        assert_eq!(res.status(), 401);
    }
    let refused = login(&t, &ana.email, PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn a_full_argon2_queue_answers_at_once() {
    let t = TestApp::spawn_with(|c| {
        c.login_failures_per_address = 100_000;
        c.login_failures_per_account = 100_000;
    })
    .await;
    let ana = t.register("Ana").await;
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let (http, url) = (t.http.clone(), t.url("/api/auth/login"));
            tokio::spawn(async move {
                let body = json!({"email": format!("nobody-{i}@example.com"), "password": "guess"});
                http.post(url).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let res = login(&t, &ana.email, PASSWORD).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    assert!(took < Duration::from_secs(2), "the right password waited {took:?} behind the flood ({status})");
    assert!(status == 200 || (status == 503 && res.headers().get("retry-after").is_some()), "{status}");
    let mut statuses = Vec::new();
    for f in flood {
        statuses.push(f.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "some of the flood was refused at once");
    // Once the flood is over, the right password works.
    assert_eq!(login(&t, &ana.email, PASSWORD).await.status(), 200);
}

/// One address signing up and logging in as fast as it can holds only its own share of the
/// Argon2 queue: people at other addresses still sign up and log in, instead of being refused
/// behind it (with one queue for everyone, they got 503 for as long as the flood went on).
#[tokio::test]
async fn a_sign_in_flood_from_one_address_leaves_room_for_another_address() {
    let t = TestApp::spawn_with(|c| {
        c.login_failures_per_address = 100_000;
        c.login_failures_per_account = 100_000;
    })
    .await;
    let ana = t.register("Ana").await;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let (http, t_base) = (t.http.clone(), t.url(""));
            let (stop, refused) = (stop.clone(), refused.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let (path, body) = if n % 2 == 0 {
                        ("/api/auth/login", json!({"email": format!("nobody-{i}@example.com"), "password": "guess"}))
                    } else {
                        let email = format!("flood-{i}-{n}@example.com");
                        ("/api/auth/register", json!({"email": email, "password": PASSWORD, "display_name": "Flood"}))
                    };
                    let status = http.post(format!("{t_base}{path}")).json(&body).send().await.unwrap().status();
                    assert!([200, 201, 401, 503].contains(&status.as_u16()), "{status}");
                    if status == 503 {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    // The flood has filled its share of the queue once it is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the flood was never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elsewhere = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap();
    for _ in 0..5 {
        let res = elsewhere
            .post(t.url("/api/auth/login"))
            .json(&json!({"email": ana.email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "a login from another address during the flood");
    }
    let res = elsewhere
        .post(t.url("/api/auth/register"))
        .json(&json!({"email": "ben@example.com", "password": PASSWORD, "display_name": "Ben"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "a sign-up from another address during the flood");
    stop.store(true, Ordering::SeqCst);
    for f in flood {
        f.await.unwrap();
    }
}
