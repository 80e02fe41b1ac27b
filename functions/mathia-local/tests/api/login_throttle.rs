//! Guessing passwords: wrong attempts are counted per account and per address (a sliding minute
//! in Redis), and a full Argon2 queue refuses at once instead of making everyone wait.

use std::time::{Duration, Instant};

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
