//! Accounts, sessions and WebSocket tickets.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, unique};

#[tokio::test]
async fn register_login_me_logout() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;

    let me: Value = t.get(Some(&ana.token), "/api/me").await.json().await.unwrap();
    assert_eq!(me["user"]["id"], ana.id.to_string());
    assert_eq!(me["user"]["email"], ana.email);
    assert_eq!(me["workspaces"][0]["role"], "owner");

    // The address is unique, whatever its case.
    let dup = t
        .post(
            None,
            "/api/auth/register",
            json!({"email": ana.email.to_uppercase(), "password": "another password", "display_name": "Ana 2"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    assert_eq!(dup.json::<Value>().await.unwrap()["error"]["code"], "email_taken");

    for (email, password, name, field) in [
        ("not-an-email", "long enough pw", "X", "email"),
        (&unique("x") as &str, "long enough pw", "X", "email"),
        ("ok@example.com", "short", "X", "password"),
        ("ok@example.com", "long enough pw", "   ", "display_name"),
    ] {
        let res = t
            .post(None, "/api/auth/register", json!({"email": email, "password": password, "display_name": name}))
            .await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], field);
    }

    let wrong = t.post(None, "/api/auth/login", json!({"email": ana.email, "password": "wrong password"})).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"]["code"], "invalid_credentials");
    let nobody =
        t.post(None, "/api/auth/login", json!({"email": "nobody@example.com", "password": "whatever it is"})).await;
    assert_eq!(nobody.status(), 401);

    let login = t.post(None, "/api/auth/login", json!({"email": ana.email, "password": "correct horse battery"})).await;
    assert_eq!(login.status(), 200);
    let second_token = login.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, ana.token);

    // Logging out ends that session only.
    let out = t.post(Some(&ana.token), "/api/auth/logout", json!({})).await;
    assert_eq!(out.status(), 204);
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 401);
    assert_eq!(t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await.status(), 401);
    assert_eq!(t.get(Some(&second_token), "/api/me").await.status(), 200);

    // Tokens are stored only as hashes.
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM sessions").fetch_all(&t.db().await).await.unwrap();
    assert!(stored.iter().all(|h| h.len() == 32 && h.as_slice() != second_token.as_bytes()));
}

async fn handshake_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

#[tokio::test]
async fn tickets_are_one_time_and_expire() {
    let t = TestApp::spawn_with(|c| c.ticket_ttl = Duration::from_secs(1)).await;
    let ana = t.register("Ana").await;

    assert_eq!(handshake_status(&format!("ws://{}/ws", t.addr)).await, 401, "no ticket");
    assert_eq!(handshake_status(&t.ws_url("made-up")).await, 401, "unknown ticket");

    let res: Value = t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await.json().await.unwrap();
    assert_eq!(res["expires_in_s"], 1);
    let ticket = res["ticket"].as_str().unwrap().to_owned();
    assert_eq!(handshake_status(&t.ws_url(&ticket)).await, 101, "first use");
    assert_eq!(handshake_status(&t.ws_url(&ticket)).await, 401, "second use");

    let res: Value = t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await.json().await.unwrap();
    let stale = res["ticket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(handshake_status(&t.ws_url(&stale)).await, 401, "expired");
}

#[tokio::test]
async fn health_reports_both_stores() {
    let t = TestApp::spawn().await;
    let res = t.get(None, "/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok", "postgres": "ok", "redis": "ok"}));

    // With Redis unreachable, HTTP keeps working and health says so.
    let t = TestApp::spawn_with(|c| c.redis_url = "redis://127.0.0.1:1".into()).await;
    let res = t.get(None, "/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["redis"], "down");
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "still works").await;
    assert_eq!(room.name, "still works");
    let res = t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "unavailable");
}

#[tokio::test]
async fn common_passwords_are_refused_and_names_lose_bidi_controls() {
    let t = TestApp::spawn().await;
    for weak in ["12345678", "password1"] {
        let res = t
            .post(
                None,
                "/api/auth/register",
                json!({"email": format!("{}@example.com", unique("weak")), "password": weak, "display_name": "Weak"}),
            )
            .await;
        assert_eq!(res.status(), 400, "{weak}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["field"], "password", "{weak}");
    }

    // A right-to-left override would show "Ana\u{202E}gnp.exe" as "Anaexe.png".
    let res = t
        .post(
            None,
            "/api/auth/register",
            json!({"email": format!("{}@example.com", unique("bidi")), "password": "correct horse battery", "display_name": "Ana\u{202E}gnp.exe\u{200B}"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["display_name"], "Anagnp.exe");
}
