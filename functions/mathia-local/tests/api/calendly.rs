//! Calendly against a real local HTTP server standing in for it (wiremock), with bodies shaped
//! like Calendly's API v2 documentation.

use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

use crate::helpers::{TestApp, TestUser, WsClient};

const USER_URI: &str = "https://api.calendly.com/users/AAAAAAAAAAAAAAAA";
const TYPE_URI: &str = "https://api.calendly.com/event_types/BBBBBBBBBBBBBBBB";

fn me() -> Value {
    json!({"resource": {
        "uri": USER_URI, "name": "Ana Lima", "slug": "ana-lima", "email": "ana@example.com",
        "scheduling_url": "https://calendly.com/ana-lima", "timezone": "Europe/Paris",
        "avatar_url": null, "created_at": "2024-01-02T03:04:05.678123Z", "updated_at": "2024-08-01T03:04:05.678123Z",
        "current_organization": "https://api.calendly.com/organizations/CCCCCCCCCCCCCCCC", "resource_type": "User"
    }})
}

fn events() -> Value {
    json!({"collection": [{
        "uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2", "name": "Design review", "status": "active",
        "start_time": "2026-11-26T14:00:00.000000Z", "end_time": "2026-11-26T14:30:00.000000Z",
        "event_type": TYPE_URI, "location": {"type": "zoom", "join_url": "https://zoom.us/j/1"},
        "invitees_counter": {"total": 1, "active": 1, "limit": 1},
        "created_at": "2026-11-20T10:00:00.000000Z", "updated_at": "2026-11-20T10:00:00.000000Z",
        "event_memberships": [{"user": USER_URI}], "event_guests": []
    }], "pagination": {"count": 1, "next_page": null, "previous_page": null, "next_page_token": null, "previous_page_token": null}})
}

async fn calendly_for(server: &MockServer, token: &str) {
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(me()))
        .mount(server)
        .await;
}

async fn setup(server: &MockServer, oauth: bool) -> (TestApp, TestUser) {
    let uri = server.uri();
    let t = TestApp::spawn_with(move |c| {
        c.calendly_base_url = uri.clone();
        c.calendly_auth_url = uri.clone();
        if oauth {
            c.calendly_oauth =
                Some(("client-1".into(), "secret-1".into(), "http://127.0.0.1/api/calendly/oauth/callback".into()));
        }
    })
    .await;
    let ana = t.register("Ana").await;
    (t, ana)
}

async fn ask(ws: &mut WsClient, room: Uuid, body: &str) -> String {
    ws.send(
        json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": Uuid::new_v4().to_string()}),
    )
    .await;
    ws.recv_type("ai_stream_end").await["message"]["body"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn connect_by_token_and_no_token_in_the_database() {
    let server = MockServer::start().await;
    calendly_for(&server, "pat-good-0123456789").await;
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"title": "Unauthenticated", "message": "The access token is invalid"})),
        )
        .mount(&server)
        .await;
    let (t, ana) = setup(&server, false).await;

    let status: Value = t.get(Some(&ana.token), "/api/calendly/status").await.json().await.unwrap();
    assert_eq!(status["connected"], false);
    let bad = t.post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-bad"})).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["field"], "personal_access_token");
    let ok = t
        .post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-good-0123456789"}))
        .await;
    assert_eq!(ok.status(), 200);
    let status: Value = t.get(Some(&ana.token), "/api/calendly/status").await.json().await.unwrap();
    assert_eq!(status["connected"], true);
    assert_eq!(status["scheduling_url"], "https://calendly.com/ana-lima");

    let dump: Vec<String> =
        sqlx::query_scalar("SELECT c::text FROM calendly_accounts c").fetch_all(&t.db().await).await.unwrap();
    assert_eq!(dump.len(), 1);
    let hex: String = b"pat-good-0123456789".iter().map(|b| format!("{b:02x}")).collect();
    assert!(!dump[0].contains("pat-good") && !dump[0].contains(&hex), "the token is sealed");

    assert_eq!(t.http.delete(t.url("/api/calendly")).bearer_auth(&ana.token).send().await.unwrap().status(), 204);
    let status: Value = t.get(Some(&ana.token), "/api/calendly/status").await.json().await.unwrap();
    assert_eq!(status["connected"], false);
}

#[tokio::test]
async fn oauth_round_trip_refuses_bad_or_reused_state_and_refreshes_on_401() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "access-1", "refresh_token": "refresh-1", "scope": "default",
            "created_at": 1_795_000_000, "expires_in": 7200, "owner": USER_URI,
            "organization": "https://api.calendly.com/organizations/CCCCCCCCCCCCCCCC"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "access-2", "refresh_token": "refresh-2", "scope": "default",
            "created_at": 1_795_000_100, "expires_in": 7200, "owner": USER_URI
        })))
        .mount(&server)
        .await;
    calendly_for(&server, "access-1").await;
    // The first access token gets revoked: scheduled events answer 401 to it.
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"title": "Unauthenticated", "message": "The access token expired"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .and(header("authorization", "Bearer access-2"))
        .and(query_param("user", USER_URI))
        .respond_with(ResponseTemplate::new(200).set_body_json(events()))
        .mount(&server)
        .await;
    let (t, ana) = setup(&server, true).await;

    let start = t
        .http
        .get(t.url("/api/calendly/oauth/start"))
        .bearer_auth(&ana.token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    // The browser keeps the flow's cookie and shows it at the callback.
    let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let start: Value = start.json().await.unwrap();
    let url = reqwest::Url::parse(start["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.path(), "/oauth/authorize");
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bad = no_redirects
        .get(t.url("/api/calendly/oauth/callback?code=the-code&state=forged"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let ok = no_redirects
        .get(t.url(&format!("/api/calendly/oauth/callback?code=the-code&state={state}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/?calendly=connected");
    let reused = no_redirects
        .get(t.url(&format!("/api/calendly/oauth/callback?code=the-code&state={state}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400, "a state works once");

    let room = t.create_room(&ana, "plans").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let reply = ask(&mut a, room.id, "@mathia check my calendar").await;
    assert!(reply.contains("Design review") && reply.contains("Thu 26 Nov 15:00"), "{reply}");
    let account =
        mathia::adapters::postgres::calendly::get(&t.db().await, &t.local.app.keyring, ana.id).await.unwrap().unwrap();
    assert_eq!(account.access_token, "access-2");
    assert_eq!(account.refresh_token.as_deref(), Some("refresh-2"), "the rotated refresh token is stored");
}

#[tokio::test]
async fn chat_intents_make_the_right_requests_and_errors_read_plainly() {
    let server = MockServer::start().await;
    calendly_for(&server, "pat-1").await;
    let (t, ana) = setup(&server, false).await;
    let room = t.create_room(&ana, "plans").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let reply = ask(&mut a, room.id, "@mathia check my calendar").await;
    assert!(reply.contains("isn't connected"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia /calendly connect").await;
    assert!(reply.contains("personal access token"), "{reply}");
    t.post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-1"})).await;

    Mock::given(method("GET"))
        .and(path("/user_busy_times"))
        .and(query_param("user", USER_URI))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"collection": [{
            "type": "calendly", "start_time": "2026-11-26T14:00:00.000000Z", "end_time": "2026-11-26T15:30:00.000000Z",
            "buffered_start_time": "2026-11-26T14:00:00.000000Z", "buffered_end_time": "2026-11-26T15:30:00.000000Z",
            "event": {"uri": "https://api.calendly.com/scheduled_events/X"}
        }]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let reply = ask(&mut a, room.id, "@mathia am I free tomorrow at 3pm?").await;
    assert!(reply.contains("busy"), "{reply}");
    let busy_query =
        server.received_requests().await.unwrap().into_iter().rfind(|r| r.url.path() == "/user_busy_times").unwrap();
    let q: std::collections::HashMap<_, _> = busy_query.url.query_pairs().into_owned().collect();
    // 3 pm tomorrow in Paris, in UTC: 14:00 in winter, 13:00 in summer.
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let tomorrow = chrono::Utc::now().with_timezone(&paris).date_naive() + chrono::Days::new(1);
    let three_pm = chrono::TimeZone::from_local_datetime(&paris, &tomorrow.and_hms_opt(15, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(q["start_time"].contains(&three_pm.format("T%H:%M:%S").to_string()), "3pm in Paris is {three_pm}: {q:?}");

    Mock::given(method("GET")).and(path("/event_types")).respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "collection": [{"uri": TYPE_URI, "name": "30 Minute Meeting", "active": true, "slug": "30min", "duration": 30,
                        "kind": "solo", "scheduling_url": "https://calendly.com/ana-lima/30min", "type": "StandardEventType"}],
        "pagination": {"count": 1, "next_page": null}
    }))).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/event_type_available_times"))
        .and(query_param("event_type", TYPE_URI))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"collection": [
            {"status": "available", "invitees_remaining": 1, "start_time": "2026-11-26T13:00:00.000000Z",
             "scheduling_url": "https://calendly.com/ana-lima/30min/2026-11-26T13:00:00Z"},
            {"status": "available", "invitees_remaining": 1, "start_time": "2026-11-26T14:30:00.000000Z",
             "scheduling_url": "https://calendly.com/ana-lima/30min/2026-11-26T14:30:00Z"}
        ]})))
        .mount(&server)
        .await;
    // The plan cannot book through the API: answer with a single-use link instead.
    Mock::given(method("POST"))
        .and(path("/invitees"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"title": "Permission Denied", "message": "This feature requires a paid plan"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/scheduling_links")).and(body_string_contains(TYPE_URI))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"resource": {
            "booking_url": "https://calendly.com/d/abcd-brr7/30-minute-meeting", "owner": TYPE_URI, "owner_type": "EventType"
        }}))).mount(&server).await;
    let reply = ask(&mut a, room.id, "@mathia schedule a meeting with bob@example.com tomorrow afternoon").await;
    assert!(
        reply.contains("https://calendly.com/d/abcd-brr7/30-minute-meeting") && reply.contains("Thu 26 Nov 14:00"),
        "{reply}"
    );
    let invitee = server.received_requests().await.unwrap().into_iter().find(|r| r.url.path() == "/invitees").unwrap();
    let body: Value = serde_json::from_slice(&invitee.body).unwrap();
    assert_eq!(body["invitee"]["email"], "bob@example.com");
    assert_eq!(body["event_type"], TYPE_URI);

    // Rate limited, then down.
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let reply = ask(&mut a, room.id, "@mathia check my calendar").await;
    assert!(reply.contains("rate limiting") && reply.contains("30 seconds"), "{reply}");
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let reply = ask(&mut a, room.id, "@mathia check my calendar").await;
    assert!(reply.contains("not answering"), "{reply}");
    let res = t.get(Some(&ana.token), "/api/calendly/events").await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn no_event_types_and_no_free_slot_are_said_plainly() {
    let server = MockServer::start().await;
    calendly_for(&server, "pat-2").await;
    let (t, ana) = setup(&server, false).await;
    t.post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-2"})).await;
    let room = t.create_room(&ana, "plans").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    Mock::given(method("GET"))
        .and(path("/event_types"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"collection": [], "pagination": {"count": 0, "next_page": null}})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let reply = ask(&mut a, room.id, "@mathia book a call with the client tomorrow").await;
    assert!(reply.contains("no active Calendly event types"), "{reply}");
    Mock::given(method("GET")).and(path("/event_types")).respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "collection": [{"uri": TYPE_URI, "name": "Intro call", "active": true, "duration": 15}], "pagination": {"count": 1}
    }))).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/event_type_available_times"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"collection": []})))
        .mount(&server)
        .await;
    let reply = ask(&mut a, room.id, "@mathia book a call with the client tomorrow").await;
    assert!(reply.contains("No free slot"), "{reply}");
}

#[tokio::test]
async fn a_revoked_personal_token_asks_to_reconnect() {
    let server = MockServer::start().await;
    calendly_for(&server, "pat-3").await;
    let (t, ana) = setup(&server, false).await;
    t.post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-3"})).await;
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"title": "Unauthenticated", "message": "The access token is invalid"})),
        )
        .mount(&server)
        .await;
    let room = t.create_room(&ana, "plans").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let reply = ask(&mut a, room.id, "@mathia check my calendar").await;
    assert!(reply.contains("reconnect"), "{reply}");
}

/// Login CSRF on the OAuth flow: an attacker starts the flow on their own Mathia account and
/// gets a victim to approve the link. The callback must come from the browser that started it
/// (a cookie holding a nonce), and the code is only worth something with the PKCE verifier.
#[tokio::test]
async fn oauth_is_bound_to_the_browser_that_started_it_and_uses_pkce() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "access-1", "refresh_token": "refresh-1", "scope": "default",
            "created_at": 1_795_000_000, "expires_in": 7200, "owner": USER_URI
        })))
        .mount(&server)
        .await;
    calendly_for(&server, "access-1").await;
    let (t, attacker) = setup(&server, true).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let start = no_redirects
        .get(t.url("/api/calendly/oauth/start"))
        .bearer_auth(&attacker.token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200);
    let set_cookie =
        start.headers().get("set-cookie").expect("the start binds the browser").to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/api/calendly/oauth"] {
        assert!(set_cookie.contains(part), "{part} in {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let cookie_name = cookie.split('=').next().unwrap().to_owned();
    let start: Value = start.json().await.unwrap();
    let url = reqwest::Url::parse(start["url"].as_str().unwrap()).unwrap();
    let param = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    let challenge = param("code_challenge").expect("a PKCE challenge");
    let state = param("state").unwrap();
    let callback = t.url(&format!("/api/calendly/oauth/callback?code=the-code&state={state}"));

    // The victim's browser has no cookie, or another flow's: refused, and nothing is connected.
    let bare = no_redirects.get(&callback).send().await.unwrap();
    assert_eq!(bare.status(), 400);
    let forged = no_redirects.get(&callback).header("cookie", format!("{cookie_name}=forged")).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    let token_requests =
        |reqs: Vec<wiremock::Request>| reqs.into_iter().filter(|r| r.url.path() == "/oauth/token").collect::<Vec<_>>();
    assert!(token_requests(server.received_requests().await.unwrap()).is_empty(), "the code was never traded");
    let status: Value = t.get(Some(&attacker.token), "/api/calendly/status").await.json().await.unwrap();
    assert_eq!(status["connected"], false);

    // The browser that started it finishes it, and the code travels with its verifier.
    let ok = no_redirects.get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/?calendly=connected");
    let traded = token_requests(server.received_requests().await.unwrap());
    assert_eq!(traded.len(), 1);
    let form: Vec<(String, String)> = form_urlencoded::parse(&traded[0].body).into_owned().collect();
    let verifier = form.iter().find(|(k, _)| k == "code_verifier").map(|(_, v)| v.clone()).expect("code_verifier");
    assert!((43..=128).contains(&verifier.len()), "{verifier}");
    assert_eq!(URL_SAFE_NO_PAD.encode(mathia::tokens::hash(&verifier)), challenge);
    let status: Value = t.get(Some(&attacker.token), "/api/calendly/status").await.json().await.unwrap();
    assert_eq!(status["connected"], true);
}
