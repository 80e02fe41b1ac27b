//! "Find a time": the open slots where every Calendly-connected member of a room is free, with
//! each member's busy times read with that member's own token from a real HTTP fake of Calendly
//! (wiremock). A non-member's calendar is never read, and non-members cannot ask.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mathia::adapters::local::ManualClock;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path},
};

use crate::helpers::{TestApp, TestUser};

fn user_uri(who: &str) -> String {
    format!("https://api.calendly.com/users/{who}")
}

/// Calendly for one person: `/users/me` and their busy times, both only with their token.
async fn calendly_user(server: &MockServer, who: &str, busy: &[(&str, &str)]) {
    let token = format!("pat-{who}");
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resource": {
            "uri": user_uri(who), "name": who, "email": format!("{who}@example.com"),
            "scheduling_url": format!("https://calendly.com/{who}"), "timezone": "Europe/Paris"
        }})))
        .mount(server)
        .await;
    let collection: Vec<Value> = busy
        .iter()
        .map(|(start, end)| {
            json!({"type": "calendly", "start_time": start, "end_time": end,
                                   "buffered_start_time": start, "buffered_end_time": end})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/user_busy_times"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"collection": collection})))
        .mount(server)
        .await;
}

async fn connect(t: &TestApp, user: &TestUser, who: &str) {
    let res = t
        .post(Some(&user.token), "/api/calendly/connect", json!({"personal_access_token": format!("pat-{who}")}))
        .await;
    assert_eq!(res.status(), 200, "{who} connects");
}

async fn busy_calls_with(server: &MockServer, token: &str) -> usize {
    let auth = format!("Bearer {token}");
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.url.path() == "/user_busy_times" && r.headers.get("authorization").is_some_and(|v| v == auth.as_str())
        })
        .count()
}

#[tokio::test]
async fn find_a_time_intersects_the_members_busy_times_and_never_reads_an_outsiders_calendar() {
    let server = MockServer::start().await;
    calendly_user(&server, "ana", &[("2026-11-25T09:00:00.000000Z", "2026-11-25T10:00:00.000000Z")]).await;
    calendly_user(&server, "ben", &[("2026-11-25T12:00:00.000000Z", "2026-11-25T13:30:00.000000Z")]).await;
    calendly_user(&server, "eve", &[("2026-11-25T14:00:00.000000Z", "2026-11-25T15:00:00.000000Z")]).await;
    let uri = server.uri();
    // Wednesday 25 November 2026, 07:00 UTC (08:00 in Paris, the users' timezone).
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 7, 0, 0).unwrap()));
    let t = TestApp::spawn_full(
        move |c| {
            c.calendly_base_url = uri.clone();
            c.calendly_auth_url = uri.clone();
            c.rate_limit_per_min = 6;
        },
        Some(clock),
    )
    .await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cid = t.register("Cid").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    t.bring_in(&ana, room.id, &cid).await;
    let elsewhere = t.create_room(&eve, "elsewhere").await;
    let _ = elsewhere;
    connect(&t, &ana, "ana").await;
    connect(&t, &ben, "ben").await;
    connect(&t, &eve, "eve").await;

    let url = format!("/api/rooms/{}/free-times?days=1&minutes=30", room.id);
    let res = t.get(Some(&ana.token), &url).await;
    assert_eq!(res.status(), 200);
    let found: Value = res.json().await.unwrap();
    assert_eq!(found["timezone"], "Europe/Paris");
    let starts: Vec<&str> = found["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    let hours = [
        "08:00", "08:30", "10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00",
        "16:30",
    ];
    let expected: Vec<String> = hours.iter().map(|h| format!("2026-11-25T{h}:00Z")).collect();
    assert_eq!(starts, expected, "Paris working hours, minus Ana's and Ben's busy times (and not Eve's)");
    let members: Vec<(String, String)> = found["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["display_name"].as_str().unwrap().to_owned(), m["calendly"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        members,
        [
            ("Ana".into(), "connected".into()),
            ("Ben".into(), "connected".into()),
            ("Cid".into(), "not_connected".into())
        ]
    );
    assert_eq!(busy_calls_with(&server, "pat-ana").await, 1);
    assert_eq!(busy_calls_with(&server, "pat-ben").await, 1, "Ben's busy times, with Ben's token");
    assert_eq!(busy_calls_with(&server, "pat-eve").await, 0, "Eve is not in the room");

    // Eve cannot look at the room; Cid has no Calendly; bad input is named.
    let res = t.get(Some(&eve.token), &url).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "not_member");
    let res = t.get(Some(&cid.token), &url).await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "calendly_not_connected");
    let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/free-times?days=30", room.id)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "days");
    assert_eq!(busy_calls_with(&server, "pat-eve").await, 0, "still never Eve's calendar");

    // A flood is cut by the per-person limit (6 a minute here; Ana used 2).
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(t.get(Some(&ana.token), &url).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{statuses:?}");
    assert_eq!(busy_calls_with(&server, "pat-ana").await, 5, "refused asks reach no calendar");

    // Logged out: refused.
    assert_eq!(t.post(Some(&ben.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(t.get(Some(&ben.token), &url).await.status(), 401);
}
