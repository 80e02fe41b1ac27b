//! File messages: upload, validation by the real bytes, membership-checked short-lived
//! downloads — on the local store through the whole app, and on S3 (the emulator) at the port.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use mathia::{
    adapters::local::ManualClock,
    files::{FileStore, s3::S3FileStore},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    emulator::Emulator,
    helpers::{Api, TestApp, TestUser, WsClient},
};

pub fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    bytes.extend((0..2000u32).map(|i| (i % 251) as u8));
    bytes
}

pub async fn declare(t: &Api, user: &TestUser, room: Uuid, name: &str, size: usize) -> reqwest::Response {
    t.post(
        Some(&user.token),
        &format!("/api/rooms/{room}/uploads"),
        json!({"name": name, "content_type": "image/png", "size": size}),
    )
    .await
}

pub async fn upload(t: &TestApp, user: &TestUser, room: Uuid, name: &str, bytes: &[u8]) -> (String, String) {
    let res = declare(t, user, room, name, bytes.len()).await;
    assert_eq!(res.status(), 201);
    let d: Value = res.json().await.unwrap();
    let url = d["upload_url"].as_str().unwrap().to_owned();
    let put = t.http.put(t.url(&url)).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(put.status(), 204, "upload of {name}");
    (d["file_id"].as_str().unwrap().to_owned(), url)
}

pub async fn file_message(ws: &mut WsClient, room: Uuid, file_id: &str, cmid: &str) -> Value {
    ws.send(json!({"action": "file_message", "room_id": room, "file_id": file_id, "client_msg_id": cmid, "caption": "look"})).await;
    loop {
        let ev = ws.recv().await;
        if ev["type"] == "ack" || ev["type"] == "error" {
            return ev;
        }
    }
}

#[tokio::test]
async fn a_shared_file_reaches_members_only_and_links_expire() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "design").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;

    let bytes = png();
    let (file_id, _) = upload(&t, &ana, room.id, "../mock-up \"v2\".png", &bytes).await;
    assert_eq!(file_message(&mut a, room.id, &file_id, "f1").await["type"], "ack");
    let got = b.recv_type("new_message").await;
    let attachment = &got["message"]["attachment"];
    assert_eq!(attachment["id"], file_id);
    assert_eq!(attachment["name"], "mock-up _v2_.png", "the name is sanitised");
    assert_eq!(attachment["content_type"], "image/png");
    assert_eq!(attachment["size"], bytes.len());
    assert_eq!(got["message"]["body"], "look");

    let link = |user: &TestUser| {
        let (t, token, url) = (&t, user.token.clone(), attachment["url"].as_str().unwrap().to_owned());
        async move { t.http.get(t.url(&url)).bearer_auth(token).header("accept", "application/json").send().await.unwrap() }
    };
    let res = link(&ben).await;
    assert_eq!(res.status(), 200);
    let download = res.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let body = t.http.get(t.url(&download)).send().await.unwrap();
    assert_eq!(body.status(), 200);
    assert!(body.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    assert_eq!(body.bytes().await.unwrap().to_vec(), bytes, "identical bytes");
    assert_eq!(link(&eve).await.status(), 403, "a non-member gets no link");
    // The bytes at rest are sealed: the PNG signature is not on disk.
    let stored = std::fs::read(t.local.app.config.files_dir.join(&file_id)).unwrap();
    assert!(!stored.windows(8).any(|w| w == &bytes[..8]));

    clock.advance(chrono::Duration::minutes(10));
    let expired = t.http.get(t.url(&download)).send().await.unwrap();
    assert_eq!(expired.status(), 403, "an expired link is refused");
    let forged = download.replace("sig=", "sig=00");
    assert_eq!(t.http.get(t.url(&forged)).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn bad_files_are_rejected_and_nothing_shows_in_the_room() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "design").await;
    let other = t.create_room(&ben, "elsewhere").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let before = t.message_count().await;

    // Over 5 MB: refused when declared, and when the bytes turn out bigger than declared.
    assert_eq!(declare(&t, &ana, room.id, "huge.png", 6 * 1024 * 1024).await.status(), 413);
    let res = declare(&t, &ana, room.id, "small.txt", 10).await;
    let d: Value = res.json().await.unwrap();
    let put =
        t.http.put(t.url(d["upload_url"].as_str().unwrap())).body(vec![b'a'; 6 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(put.status(), 413);
    assert_eq!(declare(&t, &ana, room.id, "tool.exe", 10).await.status(), 400);

    let exe = [b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".as_slice(), &[0u8; 200]].concat();
    let (fake_png, _) = upload(&t, &ana, room.id, "cat.png", &exe).await;
    let err = file_message(&mut a, room.id, &fake_png, "x1").await;
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["ref"], "x1");
    assert!(err["message"].as_str().unwrap().contains("rejected"), "{err}");

    let html = b"<!DOCTYPE html><html><body><script>alert('hi')</script></body></html>";
    let res = t
        .post(
            Some(&ana.token),
            &format!("/api/rooms/{}/uploads", room.id),
            json!({"name": "notes.txt", "content_type": "text/plain", "size": html.len()}),
        )
        .await;
    let d: Value = res.json().await.unwrap();
    let put = t.http.put(t.url(d["upload_url"].as_str().unwrap())).body(html.to_vec()).send().await.unwrap();
    assert_eq!(put.status(), 204, "the bytes are uploaded, so the refusal below is the sniffing's");
    assert_eq!(file_message(&mut a, room.id, d["file_id"].as_str().unwrap(), "x2").await["code"], "bad_request");

    // A file of another room, and one never uploaded.
    let (elsewhere, _) = upload(&t, &ben, other.id, "plan.png", &png()).await;
    assert_eq!(file_message(&mut b, room.id, &elsewhere, "x3").await["code"], "bad_request");
    let res = declare(&t, &ana, room.id, "later.png", 100).await;
    let never: Value = res.json().await.unwrap();
    let err = file_message(&mut a, room.id, never["file_id"].as_str().unwrap(), "x4").await;
    assert!(err["message"].as_str().unwrap().contains("never uploaded"), "{err}");
    assert_eq!(file_message(&mut a, room.id, &Uuid::new_v4().to_string(), "x5").await["code"], "bad_request");

    b.expect_nothing_but(&["error"], Duration::from_millis(300)).await;
    assert_eq!(t.message_count().await, before, "nothing shown in the room");
    // The rejected upload's bytes are gone.
    assert!(!t.local.app.config.files_dir.join(&fake_png).exists());
}

#[tokio::test]
async fn an_upload_is_refused_outside_ones_rooms() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "design").await;
    let files = |user: Uuid| {
        let db = t.local.app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM files WHERE uploader_id = $1")
                .bind(user)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };

    let res = declare(&t, &eve, room.id, "plan.png", 100).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_member", "{body}");
    assert!(body.get("file_id").is_none() && body.get("upload_url").is_none(), "{body}");
    let res = declare(&t, &eve, Uuid::new_v4(), "plan.png", 100).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "room_not_found");
    assert_eq!(files(eve.id).await, 0, "nothing was declared for Eve");
    // Ana, a member, may: the refusal above was Eve's, not the request's.
    assert_eq!(declare(&t, &ana, room.id, "plan.png", 100).await.status(), 201);
    assert_eq!(files(ana.id).await, 1);
}

#[tokio::test]
async fn an_accepted_file_no_longer_takes_uploads() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "design").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let first = png();
    let (file_id, upload_url) = upload(&t, &ana, room.id, "mock-up.png", &first).await;
    assert_eq!(file_message(&mut a, room.id, &file_id, "f1").await["type"], "ack");

    let mut second = png();
    second.extend_from_slice(b"a later version");
    let put = t.http.put(t.url(&upload_url)).body(second.clone()).send().await.unwrap();
    assert_eq!(put.status(), 409, "a second PUT after acceptance is refused");
    assert_eq!(put.json::<Value>().await.unwrap()["error"]["code"], "already_uploaded");

    let res = t
        .http
        .get(t.url(&format!("/api/files/{file_id}")))
        .bearer_auth(&ben.token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let download = res.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let got = t.http.get(t.url(&download)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), first, "still the bytes that were accepted");
    a.assert_alive().await;
}

#[tokio::test]
async fn uploads_never_shared_are_swept_after_a_day() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "design").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (shared, _) = upload(&t, &ana, room.id, "kept.png", &png()).await;
    assert_eq!(file_message(&mut a, room.id, &shared, "k1").await["type"], "ack");
    let (abandoned, _) = upload(&t, &ana, room.id, "forgotten.png", &png()).await;
    let dir = t.local.app.config.files_dir.clone();
    // An upload waits beside the accepted files until file_message checks it.
    let waiting = dir.join(format!("{abandoned}.upload"));
    assert!(waiting.exists());

    clock.advance(chrono::Duration::hours(23));
    assert_eq!(mathia::workers::scheduler::tick(&t.local.app).await.abandoned_uploads_removed, 0, "not yet");
    clock.advance(chrono::Duration::hours(2));
    let (first, second) =
        tokio::join!(mathia::workers::scheduler::tick(&t.local.app), mathia::workers::scheduler::tick(&t.local.app));
    assert_eq!(first.abandoned_uploads_removed + second.abandoned_uploads_removed, 1, "removed once");
    assert!(!waiting.exists() && !dir.join(&abandoned).exists(), "its bytes are gone");
    assert!(dir.join(&shared).exists(), "the shared file stays");
    // A day on, the old socket was swept with the rest: a new one.
    drop(a);
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let err = file_message(&mut a, room.id, &abandoned, "k2").await;
    assert_eq!(err["code"], "bad_request", "{err}");
}

#[tokio::test]
async fn the_s3_store_round_trips_through_presigned_urls() {
    let emu = Emulator::start().await;
    let sdk = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("mathia-files-test").send().await.unwrap();
    let store = S3FileStore::new(s3, "mathia-files-test");
    let (file_id, room_id) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(matches!(store.read(file_id, room_id).await, Err(mathia::files::StoreError::Missing)));

    let bytes = png();
    let upload = store.upload_url(file_id, room_id, "image/png", bytes.len() as i64).await.unwrap();
    let http = reqwest::Client::new();
    let put = http.put(&upload).header("content-type", "image/png").body(bytes.clone()).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(store.read(file_id, room_id).await.unwrap(), bytes);
    let download = store.download_url(file_id, "mock-up.png", "image/png").await.unwrap();
    assert!(!http.get(&download).send().await.unwrap().status().is_success(), "nothing to download before acceptance");
    store.accept(file_id, room_id, &bytes).await.unwrap();
    // A resent file_message reads and accepts again: both still work once the file has moved.
    assert_eq!(store.read(file_id, room_id).await.unwrap(), bytes, "read after the move");
    store.accept(file_id, room_id, &bytes).await.unwrap();
    // The upload URL still works for a while, but what lands there is not the file.
    let late = http.put(&upload).header("content-type", "image/png").body(b"MZ late".to_vec()).send().await.unwrap();
    assert!(late.status().is_success(), "{}", late.status());
    let got = http.get(&download).send().await.unwrap();
    assert!(got.status().is_success());
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes, "identical bytes");
    store.delete(file_id).await.unwrap();
    assert!(!http.get(&download).send().await.unwrap().status().is_success(), "deleted");
}

#[tokio::test]
async fn an_s3_upload_is_bounded_by_its_declared_size() {
    let emu = Emulator::start().await;
    let sdk = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("mathia-files-size").send().await.unwrap();
    let store = S3FileStore::new(s3.clone(), "mathia-files-size");
    let (file_id, room_id) = (Uuid::new_v4(), Uuid::new_v4());
    let bytes = png();
    let upload = store.upload_url(file_id, room_id, "image/png", bytes.len() as i64).await.unwrap();
    // The declared size is part of the signature: S3 refuses a PUT of any other length.
    let url = reqwest::Url::parse(&upload).unwrap();
    let signed = url.query_pairs().find(|(k, _)| k == "X-Amz-SignedHeaders").map(|(_, v)| v.into_owned());
    assert!(
        signed.as_deref().unwrap_or("").split(';').any(|h| h == "content-length"),
        "the declared size is not signed into the upload URL: {signed:?}"
    );
    // (moto does not check presigned signatures, so a PUT of another length is not refused here
    // as S3 refuses it: the signed header above is what this test can see.)
    let http = reqwest::Client::new();
    let put = http.put(&upload).header("content-type", "image/png").body(bytes.clone()).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(store.read(file_id, room_id).await.unwrap(), bytes);
    // An object over the limit that got there anyway is refused by its size, not read whole.
    let huge = Uuid::new_v4();
    let body = vec![7u8; (mathia::files::MAX_BYTES + 1) as usize];
    s3.put_object().bucket("mathia-files-size").key(format!("pending/{huge}")).body(body.into()).send().await.unwrap();
    let read = store.read(huge, room_id).await;
    assert!(
        matches!(read, Err(mathia::files::StoreError::TooLarge)),
        "an object over 5 MB was read into memory ({:?} bytes)",
        read.map(|b| b.len())
    );
}

#[tokio::test]
async fn a_put_racing_file_message_cannot_change_what_was_accepted() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "design").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let mut image = png();
    image.resize(4 * 1024 * 1024, 7);
    let exe = [b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".as_slice(), &[0u8; 200]].concat();
    let mut accepted = 0;
    for attempt in 0..10 {
        let (file_id, url) = upload(&t, &ana, room.id, "big.png", &image).await;
        // PUTs of an executable to the same URL, one after another, while file_message runs.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let puts = {
            let (http, url, exe, done) = (t.http.clone(), t.url(&url), exe.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    http.put(&url).body(exe.clone()).send().await.unwrap();
                }
            })
        };
        let answer = file_message(&mut a, room.id, &file_id, &format!("race-{attempt}")).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        puts.await.unwrap();
        if answer["type"] != "ack" {
            // An executable that landed before the bytes were read is rejected: that is right.
            assert_eq!(answer["code"], "bad_request", "{answer}");
            continue;
        }
        accepted += 1;
        let res = t
            .http
            .get(t.url(&format!("/api/files/{file_id}")))
            .bearer_auth(&ana.token)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let download = res.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
        let served = t.http.get(t.url(&download)).send().await.unwrap().bytes().await.unwrap().to_vec();
        assert!(
            served == image,
            "attempt {attempt}: accepted as a {} byte PNG, now serves {} bytes starting {:?}",
            image.len(),
            served.len(),
            &served[..served.len().min(2)]
        );
    }
    assert!(accepted > 0, "no attempt was accepted: nothing was checked");
}

/// A test's app leaves nothing behind once dropped: not its files, nor its Redis keys (the
/// moderation buffer's have no expiry), so runs on one machine do not pile up.
#[tokio::test]
async fn a_dropped_test_app_leaves_no_files_or_redis_keys_behind() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "design").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (file_id, _) = upload(&t, &ana, room.id, "mock-up.png", &png()).await;
    assert_eq!(file_message(&mut a, room.id, &file_id, "f1").await["type"], "ack");
    let dir = t.local.app.config.files_dir.clone();
    let prefix = t.local.app.config.redis_prefix.clone();
    assert!(dir.join(&file_id).exists());
    let redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys = |redis: &redis::aio::MultiplexedConnection| {
        let (mut redis, pattern) = (redis.clone(), format!("{prefix}*"));
        async move { redis::cmd("KEYS").arg(pattern).query_async::<Vec<String>>(&mut redis).await.unwrap() }
    };
    // The message waits in the room's moderation buffer, a key with no expiry.
    let buffer = format!("{prefix}mod:buf:{}", room.id);
    crate::helpers::wait_until("the moderation buffer", || {
        let (keys, buffer) = (keys(&redis), buffer.clone());
        async move { keys.await.contains(&buffer) }
    })
    .await;

    a.close().await;
    drop(t);
    assert!(!dir.exists(), "the files directory is removed");
    assert_eq!(keys(&redis).await, Vec::<String>::new(), "no key under the app's prefix is left");
}
