//! Message search over the keyed blind index: words found across the rooms one reads, never
//! beyond them; edits re-index and deletes remove; a history page around a result; and neither
//! Postgres (pg_dump) nor Redis (every key under the test's prefix) holds a searched word.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient, unique};

/// Posts `body` and answers the stored message's id.
async fn say(ws: &mut WsClient, room: Uuid, body: &str) -> Uuid {
    let cid = Uuid::new_v4().to_string();
    ws.send(json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": cid})).await;
    loop {
        let m = ws.recv_type("new_message").await;
        if m["message"]["client_msg_id"] == cid.as_str() {
            return m["message"]["id"].as_str().unwrap().parse().unwrap();
        }
    }
}

fn path(q: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/api/search?q={q}")
}

/// The search's status and body.
async fn search(t: &TestApp, user: &TestUser, path: &str) -> (u16, Value) {
    let res = t.get(Some(&user.token), path).await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// The ids of the results of a search that must succeed.
async fn found(t: &TestApp, user: &TestUser, q: &str) -> Vec<Uuid> {
    let (status, body) = search(t, user, &path(q)).await;
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().unwrap().iter().map(|r| r["message"]["id"].as_str().unwrap().parse().unwrap()).collect()
}

#[tokio::test]
async fn search_finds_a_message_by_a_word_or_all_words_ignoring_case_and_punctuation() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "planning").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let review = say(&mut a, room.id, "The quarterly BUDGET review is on Friday.").await;
    let lunch = say(&mut a, room.id, "budget-lunch at noon?").await;
    say(&mut a, room.id, "something else entirely").await;

    // Newest first.
    assert_eq!(found(&t, &ana, "Budget").await, vec![lunch, review]);
    assert_eq!(found(&t, &ana, "review, BUDGET!").await, vec![review]);
    assert_eq!(found(&t, &ana, "budget unicorn").await, Vec::<Uuid>::new());
    assert_eq!(found(&t, &ana, "budg").await, Vec::<Uuid>::new(), "whole words only");

    let (_, body) = search(&t, &ana, &path("friday")).await;
    let hit = &body["results"][0];
    assert_eq!(hit["room"]["id"], room.id.to_string());
    assert_eq!(hit["room"]["name"], "planning");
    assert_eq!(hit["message"]["author"]["display_name"], "Ana");
    assert!(hit["excerpt"].as_str().unwrap().contains("Friday"), "{hit}");
    assert!(body["next_before"].is_null());

    // Paging: one at a time, the cursor leads to the older one.
    let (_, first) = search(&t, &ana, &format!("{}&limit=1", path("budget"))).await;
    assert_eq!(first["results"][0]["message"]["id"], lunch.to_string());
    let next = first["next_before"].as_str().unwrap();
    let (_, second) = search(&t, &ana, &format!("{}&limit=1&before={next}", path("budget"))).await;
    assert_eq!(second["results"][0]["message"]["id"], review.to_string());
    assert!(second["next_before"].is_null());
}

#[tokio::test]
async fn search_never_returns_a_room_the_person_cannot_read() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let word = unique("zebra").replace('-', "");
    // Ben's own room, in his own workspace.
    let bens = t.create_room(&ben, "bens").await;
    let (mut b, _) = t.ws_in_room(&ben, bens.id).await;
    say(&mut b, bens.id, &format!("{word} in Ben's workspace")).await;
    // Ana's private room, Ben not in it; and a shared one he is brought into.
    let secret = t.create_room(&ana, "secret").await;
    let shared = t.create_room(&ana, "shared").await;
    t.bring_in(&ana, shared.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, secret.id).await;
    let in_secret = say(&mut a, secret.id, &format!("{word} is secret")).await;
    a.send(json!({"action": "join_room", "room_id": shared.id})).await;
    a.recv_type("room_joined").await;
    let in_shared = say(&mut a, shared.id, &format!("{word} is shared")).await;

    assert_eq!(found(&t, &ana, &word).await, vec![in_shared, in_secret], "Ana reads her rooms only");
    let bens_view = found(&t, &ben, &word).await;
    assert_eq!(bens_view.len(), 2, "Ben's own message and the shared one");
    assert!(bens_view.contains(&in_shared) && !bens_view.contains(&in_secret));

    // Asking for a room one is not in is refused, not answered empty.
    let (status, body) = search(&t, &ben, &format!("{}&room_id={}", path(&word), secret.id)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_member")), "{body}");
    let (status, _) = search(&t, &ana, &format!("{}&room_id={}", path(&word), bens.id)).await;
    assert_eq!(status, 403);
    let (status, body) = search(&t, &ana, &format!("{}&room_id={}", path(&word), shared.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);

    // Once Ben leaves, the shared room is out of his reach.
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{}/leave", shared.id), json!({})).await;
    assert_eq!(res.status(), 204);
    assert!(!found(&t, &ben, &word).await.contains(&in_shared));
    assert_eq!(found(&t, &ben, &word).await.len(), 1);
}

#[tokio::test]
async fn edits_reindex_a_message_and_deletes_remove_it() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "kitchen").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let id = say(&mut a, room.id, "apple pie tonight").await;
    assert_eq!(found(&t, &ana, "apple").await, vec![id]);

    a.send(json!({"action": "edit_message", "room_id": room.id, "message_id": id, "body": "banana pie tonight"})).await;
    a.recv_type("message_edited").await;
    assert_eq!(found(&t, &ana, "apple").await, Vec::<Uuid>::new(), "the old word no longer finds it");
    assert_eq!(found(&t, &ana, "banana").await, vec![id]);
    assert_eq!(found(&t, &ana, "pie banana").await, vec![id], "the kept word still does");

    a.send(json!({"action": "delete_message", "room_id": room.id, "message_id": id})).await;
    a.recv_type("message_deleted").await;
    assert_eq!(found(&t, &ana, "banana").await, Vec::<Uuid>::new());
    assert_eq!(found(&t, &ana, "pie").await, Vec::<Uuid>::new());
    let terms: Option<Vec<i64>> = sqlx::query_scalar("SELECT search_terms FROM messages WHERE id = $1")
        .bind(id)
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert_eq!(terms, None, "a deleted message leaves no index entries");
}

/// Every search-index entry of the database.
pub const INDEX_ENTRIES: &str = "SELECT coalesce(sum(cardinality(search_terms)), 0)::int8 FROM messages";

#[tokio::test]
async fn search_refuses_bad_queries_outsiders_logged_out_sessions_and_floods() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 5).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    say(&mut a, room.id, "searchable words here").await;
    let terms_before: i64 = sqlx::query_scalar(INDEX_ENTRIES).fetch_one(&t.db().await).await.unwrap();
    assert!(terms_before > 0);

    for bad in ["/api/search", "/api/search?q=", "/api/search?q=the%20of%20a", "/api/search?q=words&limit=0"] {
        let (status, body) = search(&t, &ana, bad).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{bad}: {body}");
    }
    let long = "x".repeat(300);
    assert_eq!(search(&t, &ana, &path(&long)).await.0, 400);

    // No session, a logged-out one.
    assert_eq!(t.get(None, &path("words")).await.status(), 401);
    let gone = t.register("Gone").await;
    assert_eq!(t.post(Some(&gone.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(search(&t, &gone, &path("words")).await.0, 401);

    // A flood: past the per-person limit, 429 with when to retry.
    let mut limited = None;
    for _ in 0..8 {
        let res = t.get(Some(&ana.token), &path("words")).await;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
        assert_eq!(res.status(), 200);
    }
    let res = limited.expect("the flood is limited");
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Nothing changed: no message, no index row.
    assert_eq!(t.message_count().await, 1);
    let terms_after: i64 = sqlx::query_scalar(INDEX_ENTRIES).fetch_one(&t.db().await).await.unwrap();
    assert_eq!(terms_after, terms_before);
}

#[tokio::test]
async fn a_history_page_around_a_message_pages_both_ways_and_refuses_another_rooms_message() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "long").await;
    let other = t.create_room(&ana, "other").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let mut ids = Vec::new();
    for i in 1..=30 {
        ids.push(say(&mut a, room.id, &format!("message number {i}")).await);
    }
    let page = |q: String| {
        let t = &t;
        let ana = &ana;
        async move {
            let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/messages?{q}", room.id)).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let bodies = |p: &Value| {
        p["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let numbers =
        |p: &Value| bodies(p).iter().map(|b| b.rsplit(' ').next().unwrap().parse::<u32>().unwrap()).collect::<Vec<_>>();

    let mid = page(format!("around={}&limit=10", ids[9])).await;
    assert_eq!(numbers(&mid), (6..=15).collect::<Vec<_>>());
    assert_eq!(mid["next_before"], ids[5].to_string());
    assert_eq!(mid["next_after"], ids[14].to_string());
    let older = page(format!("before={}&limit=10", mid["next_before"].as_str().unwrap())).await;
    assert_eq!(numbers(&older), (1..=5).collect::<Vec<_>>());
    let newer = page(format!("after={}&limit=20", mid["next_after"].as_str().unwrap())).await;
    assert_eq!(numbers(&newer), (16..=30).collect::<Vec<_>>());

    // At the ends there is nothing more that way.
    let first = page(format!("around={}&limit=4", ids[0])).await;
    assert_eq!(numbers(&first), vec![1, 2, 3]);
    assert!(first["next_before"].is_null());
    assert_eq!(first["next_after"], ids[2].to_string());
    let last = page(format!("around={}&limit=4", ids[29])).await;
    assert_eq!(numbers(&last), vec![29, 30]);
    assert!(last["next_after"].is_null());

    // Another room's message, a mix of cursors, an outsider: refused.
    let (mut o, _) = t.ws_in_room(&ana, other.id).await;
    let elsewhere = say(&mut o, other.id, "elsewhere").await;
    let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/messages?around={elsewhere}", room.id)).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "around");
    let res =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages?around={}&before={}", room.id, ids[3], ids[4])).await;
    assert_eq!(res.status(), 400);
    let res = t.get(Some(&ben.token), &format!("/api/rooms/{}/messages?around={}", room.id, ids[3])).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn neither_pg_dump_nor_redis_holds_a_word_of_an_indexed_message() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "vault").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let word = format!("xylophone{}", Uuid::new_v4().simple());
    let id = say(&mut a, room.id, &format!("the {word} plan, edited later")).await;
    let edited = format!("the {word} plan and the quokka{}", Uuid::new_v4().simple());
    a.send(json!({"action": "edit_message", "room_id": room.id, "message_id": id, "body": edited})).await;
    a.recv_type("message_edited").await;
    assert_eq!(found(&t, &ana, &word).await, vec![id], "indexed");
    let quokka = edited.rsplit(' ').next().unwrap().to_owned();

    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let url = format!("{}/{}", crate::helpers::postgres_base(), t.db_name);
    let dump = std::process::Command::new("pg_dump").arg("--data-only").arg(&url).output().expect("pg_dump runs");
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout).to_lowercase();
    assert!(dump.contains("search_terms"), "the dump sees the index");
    for secret in [word.as_str(), quokka.as_str()] {
        assert!(!dump.contains(secret), "plaintext in pg_dump");
        assert!(!dump.contains(&hex(secret)), "plaintext bytes in pg_dump");
    }

    // Every key under the test's prefix, every value whatever its type.
    let prefix = t.local.app.config.redis_prefix.clone();
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty(), "the app keeps something in Redis");
    let mut seen = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(&mut conn).await.unwrap();
        let values: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap(),
            "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query_async(&mut conn).await.unwrap(),
            "hash" => redis::cmd("HGETALL").arg(key).query_async(&mut conn).await.unwrap(),
            "set" => redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await.unwrap(),
            "zset" => {
                redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query_async(&mut conn).await.unwrap()
            }
            "stream" => redis::cmd("XRANGE").arg(key).arg("-").arg("+").query_async(&mut conn).await.unwrap(),
            _ => redis::Value::Nil,
        };
        seen.push_str(key);
        text_of(&values, &mut seen);
        seen.push('\n');
    }
    let seen = seen.to_lowercase();
    for secret in [word.as_str(), quokka.as_str()] {
        assert!(!seen.contains(secret), "plaintext in Redis:\n{seen}");
    }
}

/// A Redis reply as text: bulk strings as (lossy) UTF-8, so a word stored there is seen.
fn text_of(value: &redis::Value, out: &mut String) {
    match value {
        redis::Value::BulkString(bytes) => out.push_str(&String::from_utf8_lossy(bytes)),
        redis::Value::SimpleString(s) => out.push_str(s),
        redis::Value::Array(items) | redis::Value::Set(items) => items.iter().for_each(|v| {
            out.push(' ');
            text_of(v, out);
        }),
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            out.push(' ');
            text_of(k, out);
            out.push(' ');
            text_of(v, out);
        }),
        other => out.push_str(&format!("{other:?}")),
    }
}
