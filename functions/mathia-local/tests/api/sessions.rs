//! `mathia-local` remembers live sessions in front of Postgres (`mathia::sessions`): a
//! remembered session ends with its logout and its expiry, follows its owner's rename, and is
//! never remembered where several processes serve the database.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use mathia::adapters::local::ManualClock;

use crate::helpers::{TestApp, TestUser, postgres_base, redis_url};

fn remembered(t: &TestApp) -> usize {
    t.local.app.sessions.as_ref().expect("mathia-local remembers sessions").len()
}

async fn login(t: &TestApp, user: &TestUser) -> TestUser {
    let res = t.post(None, "/api/auth/login", json!({"email": user.email, "password": "correct horse battery"})).await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    TestUser { token, ..user.clone() }
}

/// The names `room_joined` lists as online, on a socket opened with a ticket of `user`'s session.
async fn online_names(t: &TestApp, user: &TestUser, room: Uuid) -> Vec<String> {
    let (_ws, joined) = t.ws_in_room(user, room).await;
    joined["online"].as_array().unwrap().iter().map(|o| o["display_name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_remembered_session_ends_with_its_logout_and_follows_a_rename() {
    let t = TestApp::spawn().await;

    // Someone still onboarding is remembered too, and each step they finish reaches the memory:
    // rooms open to them the moment the last one is done.
    let newcomer = t.register_only("Nia").await;
    assert_eq!(t.get(Some(&newcomer.token), "/api/me").await.status(), 200);
    assert_eq!(remembered(&t), 1, "the session was read once and remembered");
    let res = t.post(Some(&newcomer.token), "/api/rooms", json!({"name": "too soon"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "onboarding_incomplete");
    t.onboard(&newcomer, json!({"name": "Nia's team"})).await;
    assert_eq!(t.post(Some(&newcomer.token), "/api/rooms", json!({"name": "now"})).await.status(), 201);
    assert_eq!(remembered(&t), 1);

    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;

    // The same when onboarding ends by joining with an invite code.
    let joiner = t.register_only("Ola").await;
    let res = t.post(Some(&joiner.token), "/api/rooms", json!({"name": "too soon"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "onboarding_incomplete");
    let code = t.invite(&ana, room.id, json!({})).await;
    t.onboard(&joiner, json!({"invite_code": code})).await;
    assert_eq!(t.post(Some(&joiner.token), "/api/rooms", json!({"name": "mine"})).await.status(), 201);
    let history = format!("/api/rooms/{}/messages", room.id);
    assert_eq!(t.get(Some(&joiner.token), &history).await.status(), 200, "a member of the invite's room");

    let laptop = login(&t, &ana).await;
    assert_eq!(t.get(Some(&laptop.token), "/api/me").await.status(), 200);
    assert_eq!(remembered(&t), 4, "Nia's session, Ola's and both of Ana's");

    // A rename reaches the remembered sessions: a ticket fetched with either carries the new name.
    let res =
        t.put(&ana.token, "/api/onboarding/profile", json!({"display_name": "Ana Lima", "timezone": "UTC"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(online_names(&t, &laptop, room.id).await, ["Ana Lima"], "the other session's ticket");
    assert_eq!(online_names(&t, &ana, room.id).await, ["Ana Lima"], "the renaming session's ticket");

    // A logout ends the remembered session at once, for every request; the other stays.
    assert_eq!(t.post(Some(&laptop.token), "/api/auth/logout", json!({})).await.status(), 204);
    let res = t.get(Some(&laptop.token), "/api/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_token");
    assert_eq!(t.post(Some(&laptop.token), "/api/ws-ticket", json!({})).await.status(), 401);
    assert_eq!(t.get(Some(&laptop.token), &history).await.status(), 401);
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 200, "Ana's other session");
    assert_eq!(t.get(Some(&newcomer.token), "/api/me").await.status(), 200, "someone else's");
}

/// Requests that keep one session busy while it logs out: once the logout has answered, no
/// request sent with the session succeeds, however the reads and the remembering interleave.
#[tokio::test]
async fn a_flood_on_a_session_stops_at_its_logout() {
    let t = Arc::new(TestApp::spawn().await);
    let ana = t.register("Ana").await;
    let bystander = t.register("Ben").await;
    for round in 0..5 {
        let session = login(&t, &ana).await;
        assert_eq!(t.get(Some(&session.token), "/api/me").await.status(), 200);
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let flooders: Vec<_> = (0..8)
            .map(|_| {
                let (t, token, mut done) = (t.clone(), session.token.clone(), done.clone());
                tokio::spawn(async move {
                    let mut after_logout = Vec::new();
                    loop {
                        let sent_after_logout = *done.borrow_and_update();
                        let status = t.get(Some(&token), "/api/me").await.status().as_u16();
                        if sent_after_logout {
                            after_logout.push(status);
                            if after_logout.len() == 5 {
                                return after_logout;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(t.post(Some(&session.token), "/api/auth/logout", json!({})).await.status(), 204);
        done_tx.send(true).unwrap();
        for flooder in flooders {
            let statuses = tokio::time::timeout(Duration::from_secs(10), flooder).await.expect("flooder ends").unwrap();
            assert!(statuses.iter().all(|s| *s == 401), "round {round}: sent after the logout: {statuses:?}");
        }
        assert_eq!(t.get(Some(&bystander.token), "/api/me").await.status(), 200, "round {round}: Ben unaffected");
    }
}

#[tokio::test]
async fn a_remembered_session_still_expires() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 200);
    assert_eq!(remembered(&t), 1);
    let ttl = t.local.app.config.session_ttl;
    clock.advance(chrono::Duration::from_std(ttl).unwrap() - chrono::Duration::seconds(1));
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 200, "a second before its end");
    clock.advance(chrono::Duration::seconds(2));
    let res = t.get(Some(&ana.token), "/api/me").await;
    assert_eq!(res.status(), 401, "past its end");
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_token");
    assert_eq!(t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await.status(), 401);
}

/// A Lambda function shares its database and Redis with every other instance: a logout in one
/// would not reach another's memory, nor would one's rate window count another's messages, nor
/// would a ticket issued by one be found by another: none keeps any of them in memory.
#[tokio::test]
async fn functions_that_share_a_database_do_not_remember_sessions() {
    let db_name = format!("mathia_test_{}", Uuid::new_v4().simple());
    let mut config = mathia::Config::for_database(&format!("{}/{db_name}", postgres_base()), rand::random());
    config.redis_url = redis_url();
    let app = mathia::wiring::lambda_app(config).await.expect("a function's app");
    assert!(app.sessions.is_none() && app.rate_windows.is_none() && app.tickets.is_none(), "nothing kept in memory");
    app.db.close().await;
    crate::helpers::drop_database(db_name);
}
