//! Accounts, sessions and WebSocket tickets.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use mathia::{adapters::local::Tickets, tokens::hash_hex};

use crate::{
    helpers::{TestApp, TestUser, unique},
    registry_faults::{FaultyRegistry, Pause},
};

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

/// The handshake reads no database: the ticket carries the person, the session it was fetched
/// with and their name. A logout marks the session ended before it revokes it, so a ticket
/// fetched even in between is refused; and a ticket never outlives its session. The same with
/// tickets in memory (`mathia-local`) and in Redis (the functions).
#[tokio::test]
async fn a_ticket_carries_its_session_and_never_outlives_it() {
    let in_memory = TestApp::spawn().await;
    assert!(in_memory.local.app.tickets.is_some(), "mathia-local keeps tickets in memory");
    for t in [in_memory, TestApp::spawn_with_tickets_in_redis(|_| {}).await] {
        let ana = t.register("Ana").await;
        let room = t.create_room(&ana, "tickets").await;
        let (_a, joined) = t.ws_in_room(&ana, room.id).await;
        assert_eq!(joined["online"][0]["display_name"], "Ana", "the name came with the ticket");

        // Logout's first step done, the session not yet revoked in Postgres: a ticket can still be
        // fetched, and the handshake refuses it — as it refuses one fetched just before.
        let other = login(&t, &ana).await;
        let before = t.ticket(&other).await;
        mathia::realtime::mark_session_ended(&t.local.app, &hash_hex(&other.token)).await;
        let res = t.post(Some(&other.token), "/api/ws-ticket", json!({})).await;
        assert_eq!(res.status(), 200, "the session is still live in Postgres");
        let ticket = res.json::<Value>().await.unwrap()["ticket"].as_str().unwrap().to_owned();
        assert_eq!(handshake_status(&t.ws_url(&ticket)).await, 401, "fetched while logging out");
        assert_eq!(handshake_status(&t.ws_url(&before)).await, 401, "fetched before the logout");

        // A session that ends in 2 s gets a ticket that ends with it, not 60 s later.
        let ending = login(&t, &ana).await;
        alter_session(&t, &ending, "expires_at = now() + interval '2 seconds'").await;
        let res: Value = t.post(Some(&ending.token), "/api/ws-ticket", json!({})).await.json().await.unwrap();
        let expires = res["expires_in_s"].as_u64().unwrap();
        assert!((1..=2).contains(&expires), "expires_in_s {expires}");
        let ticket = res["ticket"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(handshake_status(&t.ws_url(&ticket)).await, 401, "the session ended before its ticket was used");
    }
}

/// One person's flood of ticket requests costs them their own oldest tickets, never anyone
/// else's, and the memory holds at most `Tickets::PER_PERSON` of theirs.
#[tokio::test]
async fn a_flood_of_tickets_drops_only_the_flooders_oldest() {
    let t = TestApp::spawn().await;
    let (ana, ben, _) = t.ana_and_ben().await;
    let anas = t.ticket(&ana).await;
    let flood: Vec<String> =
        futures::stream::iter(0..Tickets::PER_PERSON * 3).map(|_| t.ticket(&ben)).buffered(8).collect().await;
    assert_eq!(handshake_status(&t.ws_url(&anas)).await, 101, "Ana's ticket still opens");
    assert_eq!(handshake_status(&t.ws_url(&flood[0])).await, 401, "Ben's oldest was dropped");
    assert_eq!(handshake_status(&t.ws_url(flood.last().unwrap())).await, 101, "Ben's newest opens");
    assert_eq!(handshake_status(&t.ws_url(flood.last().unwrap())).await, 401, "once");
}

/// Tickets in memory need no Redis: with Redis unreachable `mathia-local` still opens sockets,
/// where tickets kept in Redis are refused with 503 (`unavailable`) and nothing opens.
#[tokio::test]
async fn tickets_in_memory_open_sockets_while_redis_is_unreachable() {
    let unreachable = |c: &mut mathia::Config| c.redis_url = "redis://127.0.0.1:1".into();
    let t = TestApp::spawn_with(unreachable).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "no redis").await;
    let (mut ws, joined) = t.ws_in_room(&ana, room.id).await;
    assert_eq!(joined["online"][0]["display_name"], "Ana");
    ws.assert_alive().await;

    let t = TestApp::spawn_with_tickets_in_redis(unreachable).await;
    let ana = t.register("Ana").await;
    let res = t.post(Some(&ana.token), "/api/ws-ticket", json!({})).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "unavailable");
}

/// Tickets kept in Redis: one an older build stored (no name) still opens, checked in Postgres,
/// and carries the name from there; one whose session was revoked there is refused.
#[tokio::test]
async fn a_ticket_an_older_build_stored_is_checked_in_postgres() {
    let t = TestApp::spawn_with_tickets_in_redis(|_| {}).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "tickets").await;
    let old_shape = |token: &str| format!("{} {}", ana.id, hash_hex(token));
    let live = login(&t, &ana).await;
    put_raw_ticket(&t, "old-live", &old_shape(&live.token)).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(t.ws_url("old-live")).await.expect("an old ticket opens");
    futures::SinkExt::send(&mut ws, json!({"action": "join_room", "room_id": room.id}).to_string().into())
        .await
        .unwrap();
    let joined = loop {
        let frame = futures::StreamExt::next(&mut ws).await.unwrap().unwrap();
        let v: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if v["type"] == "room_joined" {
            break v;
        }
    };
    let names: Vec<&str> =
        joined["online"].as_array().unwrap().iter().map(|o| o["display_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ana"], "one person, named from Postgres");
    let revoked = login(&t, &ana).await;
    alter_session(&t, &revoked, "revoked_at = now()").await;
    put_raw_ticket(&t, "old-revoked", &old_shape(&revoked.token)).await;
    assert_eq!(handshake_status(&t.ws_url("old-revoked")).await, 401, "an old ticket of a revoked session");
}

/// A logout that runs while a handshake is between taking its ticket and registering its
/// socket, or just after registering it (before the socket is attached), still ends that socket:
/// the handshake looks for the logout's mark once registered, in the registry that keeps it
/// (the in-process one) or in Redis (a registry that does not, as DynamoDB). On the code before,
/// every one of these sockets opened and stayed open, outside the logout's reach.
#[tokio::test]
async fn a_logout_during_a_handshake_refuses_the_socket() {
    let pause: Arc<Mutex<Option<Pause>>> = Arc::default();
    let keeps_marks = Arc::new(AtomicBool::new(true));
    let (registry, marks) = (pause.clone(), keeps_marks.clone());
    let t = TestApp::spawn_gateway(
        |_| {},
        None,
        move |local| {
            let pausing = FaultyRegistry {
                pause: registry,
                keeps_marks: marks,
                ..FaultyRegistry::over(local.app.connections.clone())
            };
            local.app = mathia::App::builder(local.app.config.clone(), local.app.db.clone())
                .connections(Arc::new(pausing))
                .push(Arc::new(local.push.clone()))
                .build()
                .unwrap();
        },
    )
    .await;
    let ana = t.register("Ana").await;
    for (marks_here, after_registering) in [(true, false), (true, true), (false, false), (false, true)] {
        keeps_marks.store(marks_here, Ordering::Relaxed);
        let session = login(&t, &ana).await;
        let url = t.ws_url(&t.ticket(&session).await);
        let (reached_tx, reached) = oneshot::channel();
        let (resume, resume_rx) = oneshot::channel();
        *pause.lock().unwrap() = Some(Pause { after_registering, reached: reached_tx, resume: resume_rx });
        let handshake = tokio::spawn(async move { handshake_status(&url).await });
        tokio::time::timeout(Duration::from_secs(10), reached).await.expect("the handshake registers").unwrap();
        let res = t.post(Some(&session.token), "/api/auth/logout", json!({})).await;
        assert_eq!(res.status(), 204);
        resume.send(()).unwrap();
        let case = format!("marks in the registry: {marks_here}, paused after registering: {after_registering}");
        assert_eq!(handshake.await.unwrap(), 401, "{case}");
        let open = t.local.app.connections.of_user(ana.id).await.unwrap();
        assert!(open.is_empty(), "{case}: nothing left registered: {open:?}");
        assert_eq!(t.push().len(), 0, "{case}: no socket held");
    }
}

/// Changes a session in Postgres behind the server's back (`set`: an SQL SET list).
async fn alter_session(t: &TestApp, user: &TestUser, set: &str) {
    sqlx::query(&format!("UPDATE sessions SET {set} WHERE token_hash = decode($1, 'hex')"))
        .bind(hash_hex(&user.token))
        .execute(&t.db().await)
        .await
        .unwrap();
}

/// Stores a ticket the way an older build did, by its hash.
async fn put_raw_ticket(t: &TestApp, ticket: &str, value: &str) {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}ticket:{}", t.local.app.config.redis_prefix, hash_hex(ticket));
    let _: () = redis::AsyncCommands::set_ex(&mut conn, key, value, 60).await.unwrap();
}

/// A second session of the same person (another browser).
async fn login(t: &TestApp, user: &TestUser) -> TestUser {
    let res = t.post(None, "/api/auth/login", json!({"email": user.email, "password": "correct horse battery"})).await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    TestUser { token, ..user.clone() }
}

/// Logout marks the session ended in Redis first; with Redis down (when no ticket can be taken
/// either) the session is still revoked, since the client drops its token whatever the answer.
#[tokio::test]
async fn logout_with_redis_down_still_ends_the_session() {
    let t = TestApp::spawn_with(|c| c.redis_url = "redis://127.0.0.1:1".into()).await;
    let ana = t.register("Ana").await;
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 200);
    assert_eq!(t.post(Some(&ana.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(t.get(Some(&ana.token), "/api/me").await.status(), 401, "the token stopped working");
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
    // Sockets too (tickets in memory): `tickets_in_memory_open_sockets_while_redis_is_unreachable`.
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
