//! Two `mathia-local` processes sharing SQS and DynamoDB in the emulator behave as one: a
//! message sent on one reaches a client connected to the other. No sticky state. Files go
//! through S3 on the same emulator, end to end.

use std::{process::Stdio, time::Duration};

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::{
    emulator::{Emulator, free_port},
    helpers::{WsClient, postgres_base, redis_url},
};

struct Instance {
    _child: Child,
    base: String,
}

async fn start_instance(emu: &Emulator, db_url: &str, redis_prefix: &str, key: &str) -> Instance {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_mathia-local"))
        .env("MATHIA_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db_url)
        .env("REDIS_URL", redis_url())
        .env("MATHIA_REDIS_PREFIX", redis_prefix)
        .env("MATHIA_MASTER_KEY", key)
        .env("MATHIA_BACKEND", "aws")
        .env("AWS_ENDPOINT_URL", &emu.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MATHIA_CONNECTIONS_TABLE", "c-connections")
        .env("MATHIA_QUEUE_PREFIX", "c-")
        .env("MATHIA_WS_ENDPOINT", &base)
        .env("MATHIA_FILES_BUCKET", "c-files")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("mathia-local starts");
    let http = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(res) = http.get(format!("{base}/healthz")).send().await
            && res.status() == 200
        {
            return Instance { _child: child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mathia-local on {base} did not become healthy");
}

async fn post(base: &str, token: Option<&str>, path: &str, body: Value) -> Value {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

async fn register(base: &str, name: &str) -> String {
    let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
    let body = post(
        base,
        None,
        "/api/auth/register",
        json!({"email": email, "password": "correct horse battery", "display_name": name}),
    )
    .await;
    let token = body["token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    for (step, body) in [
        ("profile", json!({"display_name": name, "timezone": "UTC"})),
        ("goals", json!({"goals": ["talk across instances"]})),
        ("workspace", json!({"name": format!("{name}'s team")})),
    ] {
        let res =
            http.put(format!("{base}/api/onboarding/{step}")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200, "{step}");
    }
    token
}

async fn socket(base: &str, token: &str, room: &str) -> WsClient {
    let ticket = post(base, Some(token), "/api/ws-ticket", json!({})).await["ticket"].as_str().unwrap().to_owned();
    let url = format!("{}/ws?ticket={ticket}", base.replace("http://", "ws://"));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ws = WsClient { stream };
    ws.send(json!({"action": "join_room", "room_id": room})).await;
    ws.recv_type("room_joined").await;
    ws
}

#[tokio::test]
async fn two_gateways_share_the_registry_and_deliver_across_instances() {
    let emu = Emulator::start().await;
    emu.create_resources("c-", 5, 30).await;
    let db_name = format!("mathia_test_{}", Uuid::new_v4().simple());
    let db_url = format!("{}/{db_name}", postgres_base());
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());

    let one = start_instance(&emu, &db_url, &prefix, &key).await;
    let two = start_instance(&emu, &db_url, &prefix, &key).await;

    let ana = register(&one.base, "Ana").await;
    let ben = register(&two.base, "Ben").await;
    let room =
        post(&one.base, Some(&ana), "/api/rooms", json!({"name": "across"})).await["id"].as_str().unwrap().to_owned();
    let code = post(&one.base, Some(&ana), &format!("/api/rooms/{room}/invites"), json!({})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&two.base, Some(&ben), &format!("/api/invites/{code}/accept"), json!({})).await;

    let mut a = socket(&one.base, &ana, &room).await;
    let mut b = socket(&two.base, &ben, &room).await;
    // Ana (on one) hears that Ben (on two) came online.
    assert_eq!(a.recv_type("presence_update").await["status"], "online");

    a.send(json!({"action": "new_message", "room_id": room, "body": "from instance one", "client_msg_id": "x1"})).await;
    a.recv_type("ack").await;
    let got = b.recv_type("new_message").await;
    assert_eq!(got["message"]["body"], "from instance one");

    b.send(json!({"action": "new_message", "room_id": room, "body": "from instance two", "client_msg_id": "y1"})).await;
    let got = a.recv_type("new_message").await;
    let got = if got["message"]["body"] == "from instance one" { a.recv_type("new_message").await } else { got };
    assert_eq!(got["message"]["body"], "from instance two");
    assert_eq!(got["message"]["seq"], 2);

    // The registry is DynamoDB's: closing Ben's socket on two tells Ana on one.
    b.close().await;
    let offline = a.recv_type("presence_update").await;
    assert_eq!(offline["status"], "offline");

    drop((one, two));
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{}/postgres", postgres_base())).await.unwrap();
    let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#)).execute(&mut conn).await;
}

#[tokio::test]
async fn files_travel_through_s3_presigned_urls_on_the_aws_backend() {
    let emu = Emulator::start().await;
    emu.create_resources("c-", 5, 30).await;
    let sdk = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("c-files").send().await.unwrap();
    let db_name = format!("mathia_test_{}", Uuid::new_v4().simple());
    let db_url = format!("{}/{db_name}", postgres_base());
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let one = start_instance(&emu, &db_url, &prefix, &key).await;
    let base = one.base.clone();

    let ana = register(&base, "Ana").await;
    let ben = register(&base, "Ben").await;
    let eve = register(&base, "Eve").await;
    let room = post(&base, Some(&ana), "/api/rooms", json!({"name": "files"})).await["id"].as_str().unwrap().to_owned();
    let code = post(&base, Some(&ana), &format!("/api/rooms/{room}/invites"), json!({})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&base, Some(&ben), &format!("/api/invites/{code}/accept"), json!({})).await;
    let mut a = socket(&base, &ana, &room).await;
    let mut b = socket(&base, &ben, &room).await;

    let http = reqwest::Client::new();
    let share = |name: &'static str, content_type: &'static str, bytes: Vec<u8>| {
        let (http, base, ana, room, s3_url) = (http.clone(), base.clone(), ana.clone(), room.clone(), emu.url.clone());
        async move {
            let declared = post(
                &base,
                Some(&ana),
                &format!("/api/rooms/{room}/uploads"),
                json!({"name": name, "content_type": content_type, "size": bytes.len()}),
            )
            .await;
            let url = declared["upload_url"].as_str().unwrap();
            assert!(url.starts_with(&s3_url), "an S3 presigned URL: {url}");
            let put = http.put(url).header("content-type", content_type).body(bytes).send().await.unwrap();
            assert!(put.status().is_success(), "PUT to S3: {}", put.status());
            (declared["file_id"].as_str().unwrap().to_owned(), url.to_owned())
        }
    };

    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    png.extend((0..3000u32).map(|i| (i % 253) as u8));
    let (file_id, upload_url) = share("plan.png", "image/png", png.clone()).await;
    a.send(json!({"action": "file_message", "room_id": room, "file_id": file_id, "client_msg_id": "f1"})).await;
    assert_eq!(a.recv_type("ack").await["client_msg_id"], "f1");
    let got = b.recv_type("new_message").await;
    let url = got["message"]["attachment"]["url"].as_str().unwrap().to_owned();
    let link =
        |token: &str| http.get(format!("{base}{url}")).bearer_auth(token).header("accept", "application/json").send();
    let res = link(&ben).await.unwrap();
    assert_eq!(res.status(), 200);
    let download = res.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    assert!(download.starts_with(&emu.url), "a presigned S3 GET: {download}");
    assert_eq!(http.get(&download).send().await.unwrap().bytes().await.unwrap().to_vec(), png, "identical bytes");
    assert_eq!(link(&eve).await.unwrap().status(), 403, "a non-member gets no link");
    // The upload URL is still valid, but what it writes is no longer what members download.
    let swap = b"MZ\x90\x00 not the picture".to_vec();
    let put = http.put(&upload_url).header("content-type", "image/png").body(swap).send().await.unwrap();
    assert!(put.status().is_success(), "the swap reaches the bucket ({}), so what follows is tested", put.status());
    let res = link(&ben).await.unwrap();
    let download = res.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    assert_eq!(
        http.get(&download).send().await.unwrap().bytes().await.unwrap().to_vec(),
        png,
        "still the validated bytes"
    );

    // An executable renamed .png is refused, and its object is deleted from the bucket.
    let exe = [b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".as_slice(), &[0u8; 300]].concat();
    let (bad, _) = share("cat.png", "image/png", exe).await;
    a.send(json!({"action": "file_message", "room_id": room, "file_id": bad, "client_msg_id": "f2"})).await;
    let err = a.recv_type("error").await;
    assert_eq!(err["ref"], "f2");
    assert!(err["message"].as_str().unwrap().contains("rejected"), "{err}");
    let objects = s3.list_objects_v2().bucket("c-files").send().await.unwrap();
    let keys: Vec<_> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.iter().all(|k| !k.contains(&bad)), "the rejected object is gone: {keys:?}");
    assert!(keys.contains(&format!("files/{file_id}").as_str()), "the accepted one stays: {keys:?}");

    drop(one);
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{}/postgres", postgres_base())).await.unwrap();
    let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#)).execute(&mut conn).await;
}
