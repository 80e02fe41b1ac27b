//! MCP over real connections: a workspace's MCP server (a real rmcp server built here, behind a
//! bearer token) registered by the owner and called by the assistant through the fake model;
//! and Mathia's own MCP server at `/mcp`, used by an rmcp client with a person's session token.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};
use serde_json::{Value, json};
use uuid::Uuid;

use mathia::adapters::postgres::mcp_servers;

use crate::{
    agent::{ask, read_stream, request_messages},
    fake_model::{Behaviour, FakeModel, Turn},
    helpers::{TestApp, TestUser},
};

const SHOP_TOKEN: &str = "shop-secret-5f2c9a77d1";

/// A call the shop's server received: the tool, the `Authorization` header, the arguments.
type Received = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

#[derive(Clone)]
struct Shop {
    received: Received,
}

fn tool(name: &'static str, description: &'static str) -> Tool {
    let schema = json!({"type": "object", "properties": {"order_id": {"type": "string"}}});
    let Value::Object(schema) = schema else { unreachable!() };
    Tool::new(name, description, Arc::new(schema))
}

impl ServerHandler for Shop {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            tool("lookup_order", "Look up an order's status."),
            tool("slow", "Takes its time."),
            tool("delete_everything", "Deletes every order."),
            tool("broken", "Always fails."),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let auth = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("authorization"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        self.received.lock().unwrap().push((request.name.to_string(), auth, args.clone()));
        Ok(match request.name.as_ref() {
            "lookup_order" => CallToolResult::success(vec![ContentBlock::text(format!(
                "Order {} shipped on Tuesday by parcel post",
                args["order_id"].as_str().unwrap_or("?")
            ))]),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                CallToolResult::success(vec![ContentBlock::text("finally")])
            }
            "broken" => CallToolResult::error(vec![ContentBlock::text("the warehouse database is down")]),
            _ => CallToolResult::success(vec![ContentBlock::text("everything deleted")]),
        }
        .into())
    }
}

/// Refuses any request without the shop's bearer token, as a real server would.
async fn require_token(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let expected = format!("Bearer {SHOP_TOKEN}");
    match request.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        Some(given) if given == expected => next.run(request).await,
        _ => axum::response::IntoResponse::into_response(axum::http::StatusCode::UNAUTHORIZED),
    }
}

/// The shop's MCP server on 127.0.0.1:0: its URL and what it received.
async fn shop_server() -> (String, Received) {
    let (url, received, _) = shop_server_counting().await;
    (url, received)
}

/// [`shop_server`], and how many HTTP requests reached it, whatever they asked.
async fn shop_server_counting() -> (String, Received, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let received: Received = Arc::default();
    let shop = Shop { received: received.clone() };
    let service: StreamableHttpService<Shop, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(shop.clone()),
        Default::default(),
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
    );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(require_token))
        .layer(axum::middleware::map_request(move |request: axum::extract::Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(request)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/mcp"), received, hits)
}

fn servers_path(workspace_id: Uuid) -> String {
    format!("/api/workspaces/{workspace_id}/mcp-servers")
}

async fn register_shop(t: &TestApp, owner: &TestUser, workspace_id: Uuid, url: &str, timeout_ms: u32) -> Value {
    let res = t
        .post(
            Some(&owner.token),
            &servers_path(workspace_id),
            json!({"name": "shop", "url": url, "token": SHOP_TOKEN,
                   "allowed_tools": ["lookup_order", "slow", "broken"], "timeout_ms": timeout_ms}),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// Mathia with the fake model; MCP servers on private addresses (the shop's, on 127.0.0.1) may
/// be reached.
async fn spawn(turns: Vec<Turn>) -> (TestApp, FakeModel) {
    spawn_reaching(turns, true).await
}

/// Mathia with the fake model, reaching MCP servers on `private` addresses or not.
async fn spawn_reaching(turns: Vec<Turn>, private: bool) -> (TestApp, FakeModel) {
    let model = FakeModel::start(Behaviour::Script(turns)).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_idle_timeout = Duration::from_secs(600);
        c.mcp_allow_private = private;
    })
    .await;
    (t, model)
}

fn offered(model: &FakeModel, n: usize) -> Vec<String> {
    model.requests()[n]["tools"]
        .as_array()
        .map(|tools| tools.iter().map(|t| t["function"]["name"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The tool results in the model's n-th request, by call id.
fn tool_results(model: &FakeModel, n: usize) -> Vec<(String, Value)> {
    crate::agent::tool_results(&request_messages(model, n))
}

#[tokio::test]
async fn only_the_owner_registers_mcp_servers_and_the_token_is_never_shown() {
    let t = TestApp::spawn_with(|c| c.mcp_allow_private = true).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "team").await;
    let ws = room.workspace_id;
    let ben = t.register_only("Ben").await;
    let code = t.invite(&ana, room.id, json!({})).await;
    t.onboard(&ben, json!({"invite_code": code})).await;
    let eve = t.register("Eve").await;
    let (url, _) = shop_server().await;
    let good = json!({"name": "shop", "url": url, "token": SHOP_TOKEN, "allowed_tools": ["lookup_order"]});

    // A member who is not the owner, and someone outside the workspace, are refused.
    let res = t.post(Some(&ben.token), &servers_path(ws), good.clone()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "owner_only");
    let res = t.post(Some(&eve.token), &servers_path(ws), good.clone()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "not_workspace_member");
    assert_eq!(t.get(Some(&ben.token), &servers_path(ws)).await.status(), 403);
    assert_eq!(t.get(Some(&eve.token), &servers_path(ws)).await.status(), 403);
    assert_eq!(t.get(None, &servers_path(ws)).await.status(), 401);

    // Bad input: 400 with the field, and nothing stored.
    for (bad, field) in [
        (json!({"name": "Shop!", "url": url, "allowed_tools": []}), "name"),
        (json!({"name": "shop", "url": "ftp://example.com/mcp", "allowed_tools": []}), "url"),
        (json!({"name": "shop", "url": "not a url", "allowed_tools": []}), "url"),
        (json!({"name": "shop", "url": "https://user:pw@example.com/mcp", "allowed_tools": []}), "url"),
        (json!({"name": "shop", "url": url, "allowed_tools": ["no spaces"]}), "allowed_tools"),
        (json!({"name": "shop", "url": url, "allowed_tools": [], "timeout_ms": 5}), "timeout_ms"),
        (json!({"name": "shop", "url": url, "allowed_tools": [], "token": "two words"}), "token"),
    ] {
        let res = t.post(Some(&ana.token), &servers_path(ws), bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{bad}: {body}");
    }
    let res = t.post(Some(&ana.token), &servers_path(ws), json!({"name": "shop"})).await;
    assert_eq!(res.status(), 400);
    let listed: Value = t.get(Some(&ana.token), &servers_path(ws)).await.json().await.unwrap();
    assert_eq!(listed, json!([]));

    // The owner registers it; the token is never shown again, nor stored in plaintext.
    let res = t.post(Some(&ana.token), &servers_path(ws), good.clone()).await;
    assert_eq!(res.status(), 201);
    let created = res.text().await.unwrap();
    assert!(!created.contains(SHOP_TOKEN), "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["name"], "shop");
    assert_eq!(created["has_token"], true);
    assert_eq!(created["timeout_ms"], 10_000);
    assert_eq!(created["allowed_tools"], json!(["lookup_order"]));
    let res = t.get(Some(&ana.token), &servers_path(ws)).await;
    assert_eq!(res.status(), 200);
    let listed = res.text().await.unwrap();
    assert!(!listed.contains(SHOP_TOKEN), "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(m)::text FROM mcp_servers m").fetch_all(&t.db().await).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(SHOP_TOKEN), "{}", rows[0]);
    let hex: String = SHOP_TOKEN.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!rows[0].contains(&hex), "the token's bytes are in the row");

    // A name is taken once per workspace.
    let res = t.post(Some(&ana.token), &servers_path(ws), good.clone()).await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "mcp_server_name_taken");

    // Removing: only the owner, and only once.
    let one = format!("{}/{}", servers_path(ws), created["id"].as_str().unwrap());
    let res = t.http.delete(t.url(&one)).bearer_auth(&ben.token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = t.http.delete(t.url(&one)).bearer_auth(&ana.token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = t.http.delete(t.url(&one)).bearer_auth(&ana.token).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let listed: Value = t.get(Some(&ana.token), &servers_path(ws)).await.json().await.unwrap();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn the_assistant_calls_an_allowed_mcp_tool_with_the_token_and_never_one_not_allowed() {
    let (t, model) = spawn(vec![
        Turn::call(&[
            ("o1", "shop__lookup_order", json!({"order_id": "A-17"})),
            ("d1", "shop__delete_everything", json!({})),
        ]),
        Turn::say("Your order A-17 shipped on Tuesday."),
    ])
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "orders").await;
    let (url, received) = shop_server().await;
    register_shop(&t, &ana, room.workspace_id, &url, 5_000).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia where is my order A-17?").await;

    let s = read_stream(&mut a).await;
    let names: Vec<&str> = s.calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shop__lookup_order", "shop__delete_everything"]);
    assert_eq!(s.results[0]["ok"], true, "{}", s.results[0]);
    assert_eq!(s.results[1]["ok"], false, "{}", s.results[1]);
    assert_eq!(s.text, "Your order A-17 shipped on Tuesday.");

    // The allow-listed tools were offered under the server's name; the others were not.
    let tools = offered(&model, 0);
    for name in ["shop__lookup_order", "shop__slow", "shop__broken", "set_reminder"] {
        assert!(tools.contains(&name.to_owned()), "{name} not offered: {tools:?}");
    }
    assert!(!tools.contains(&"shop__delete_everything".to_owned()), "{tools:?}");

    // The server got the one allowed call, with the bearer token; never the other.
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "lookup_order");
    assert_eq!(got[0].1.as_deref(), Some(format!("Bearer {SHOP_TOKEN}").as_str()));
    assert_eq!(got[0].2, json!({"order_id": "A-17"}));

    // The model's second request holds the server's text, and the refusal.
    let results = tool_results(&model, 1);
    assert_eq!(results[0].0, "o1");
    assert!(results[0].1["text"].as_str().unwrap().contains("Order A-17 shipped on Tuesday"), "{}", results[0].1);
    assert_eq!(results[1].0, "d1");
    assert!(results[1].1["error"].is_object(), "{}", results[1].1);
    assert!(!results[1].1.to_string().contains("everything deleted"));
}

#[tokio::test]
async fn a_slow_or_failing_mcp_tool_gives_an_error_result_and_the_reply_still_ends() {
    let (t, model) = spawn(vec![
        Turn::call(&[("s1", "shop__slow", json!({})), ("b1", "shop__broken", json!({}))]),
        Turn::say("The shop is not answering right now."),
    ])
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "orders").await;
    let (url, received) = shop_server().await;
    register_shop(&t, &ana, room.workspace_id, &url, 1_000).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia check the shop").await;

    let started = std::time::Instant::now();
    let s = read_stream(&mut a).await;
    assert!(started.elapsed() < Duration::from_secs(8), "the slow call was not cut: {:?}", started.elapsed());
    assert_eq!(s.results.len(), 2);
    assert!(s.results.iter().all(|r| r["ok"] == false), "{:?}", s.results);
    assert_eq!(s.text, "The shop is not answering right now.");
    let results = tool_results(&model, 1);
    let slow = results[0].1["error"]["message"].as_str().unwrap();
    assert!(slow.contains("within 1000 ms"), "{slow}");
    let broken = results[1].1["error"]["message"].as_str().unwrap();
    assert!(broken.contains("the warehouse database is down"), "{broken}");
    // No error message carries the secret.
    assert!(!model.requests()[1].to_string().contains(SHOP_TOKEN));
    let names: Vec<String> = received.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(names, ["slow", "broken"]);
}

/// By default the assistant reaches MCP servers on the public internet only. A URL that names a
/// private, loopback or link-local address, or this machine, is refused at registration (400
/// `url`, nothing stored). A server registered before its name was pointed at such an address
/// (stored here directly, as a name that resolves to loopback, and as an address) is never
/// connected to: it offers no tools and the reply streams. With `MATHIA_MCP_ALLOW_PRIVATE` the
/// same server is reached (every other test here).
#[tokio::test]
async fn mcp_servers_off_the_public_internet_are_refused_and_never_connected_to() {
    let (t, model) = spawn_reaching(vec![Turn::say("Hello there.")], false).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "orders").await;
    let ws = room.workspace_id;
    let (url, received, hits) = shop_server_counting().await;
    let port = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/mcp").to_owned();

    for url in [
        url.clone(),
        format!("http://localhost:{port}/mcp"),
        format!("http://[::1]:{port}/mcp"),
        format!("http://[::ffff:127.0.0.1]:{port}/mcp"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.7/mcp".to_owned(),
    ] {
        let body = json!({"name": "shop", "url": url, "token": SHOP_TOKEN, "allowed_tools": ["lookup_order"]});
        let res = t.post(Some(&ana.token), &servers_path(ws), body).await;
        assert_eq!(res.status(), 400, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("public internet"), "{body}");
    }
    let listed: Value = t.get(Some(&ana.token), &servers_path(ws)).await.json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing stored");

    // Stored as if registered before the name or the rules changed.
    let app = &t.local.app;
    for (name, url) in [("named", format!("http://localhost:{port}/mcp")), ("literal", url.clone())] {
        let new = mcp_servers::NewServer {
            workspace_id: ws,
            name,
            url: &url,
            token: Some(SHOP_TOKEN),
            allowed_tools: &["lookup_order".to_owned()],
            timeout_ms: 2_000,
            created_by: ana.id,
        };
        mcp_servers::add(&app.db, &app.keyring, &new, 10).await.unwrap();
    }
    answered_without_tools_of(&t, &model, &ana, room.id, &["named", "literal"]).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the server was connected to");
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_mcp_server_offers_no_tools_and_the_reply_streams() {
    let (t, model) = spawn(vec![Turn::say("Hello there.")]).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "orders").await;
    // A port that was open a moment ago and is closed now.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    register_shop(&t, &ana, room.workspace_id, &format!("http://{closed}/mcp"), 2_000).await;
    answered_without_tools_of(&t, &model, &ana, room.id, &["shop"]).await;
}

/// `who` asks "@mathia hello" in `room`: the answer ("Hello there.") streams, and the model was
/// offered Mathia's own tools but none of the `servers`'.
async fn answered_without_tools_of(t: &TestApp, model: &FakeModel, who: &TestUser, room: Uuid, servers: &[&str]) {
    let (mut ws, _) = t.ws_in_room(who, room).await;
    ask(&mut ws, room, "@mathia hello").await;
    let s = read_stream(&mut ws).await;
    assert_eq!(s.text, "Hello there.");
    let tools = offered(model, 0);
    assert!(tools.contains(&"set_reminder".to_owned()), "{tools:?}");
    for server in servers {
        assert!(!tools.iter().any(|n| n.starts_with(&format!("{server}__"))), "{server}: {tools:?}");
    }
}

async fn mathia_client(t: &TestApp, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
    let config = StreamableHttpClientTransportConfig::with_uri(t.url("/mcp")).auth_header(token);
    ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP client connects")
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    let Value::Object(map) = v else { panic!("not an object") };
    map
}

fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn mathias_mcp_server_lists_its_tools_and_acts_only_in_the_token_holders_rooms() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "launch").await;
    let elsewhere = t.create_room(&eve, "eve's").await;
    let client = mathia_client(&t, &ana.token).await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for name in ["set_reminder", "search_messages", "remember_note", "room_people", "lookup_notes"] {
        assert!(names.contains(&name), "{name} not listed: {names:?}");
    }
    let note_tool = tools.iter().find(|t| t.name == "remember_note").unwrap();
    assert!(note_tool.input_schema["properties"]["room_id"].is_object(), "{:?}", note_tool.input_schema);

    let people = client
        .call_tool(CallToolRequestParams::new("room_people").with_arguments(args(json!({"room_id": room.id}))))
        .await
        .unwrap();
    assert_ne!(people.is_error, Some(true), "{}", text(&people));
    assert!(text(&people).contains("Ana"), "{}", text(&people));

    let noted = client
        .call_tool(
            CallToolRequestParams::new("remember_note")
                .with_arguments(args(json!({"room_id": room.id, "text": "Ship on Friday", "kind": "decision"}))),
        )
        .await
        .unwrap();
    assert_ne!(noted.is_error, Some(true), "{}", text(&noted));
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    let texts: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"Ship on Friday"), "{notes}");

    // A room that is not Ana's: an error result, and nothing written there.
    let refused = client
        .call_tool(
            CallToolRequestParams::new("remember_note")
                .with_arguments(args(json!({"room_id": elsewhere.id, "text": "Planted by Ana"}))),
        )
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true), "{}", text(&refused));
    assert!(text(&refused).contains("not a member"), "{}", text(&refused));
    let theirs: Value =
        t.get(Some(&eve.token), &format!("/api/rooms/{}/notes", elsewhere.id)).await.json().await.unwrap();
    assert!(!theirs.to_string().contains("Planted by Ana"), "{theirs}");
    // No room at all: an error result too.
    let roomless =
        client.call_tool(CallToolRequestParams::new("room_people").with_arguments(args(json!({})))).await.unwrap();
    assert_eq!(roomless.is_error, Some(true));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn mathias_mcp_server_refuses_requests_without_a_valid_token() {
    let t = TestApp::spawn().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let post = |token: Option<&str>| {
        let mut req =
            t.http.post(t.url("/mcp")).header("accept", "application/json, text/event-stream").json(&initialize);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("not-a-session")).await.unwrap().status(), 401);
    let ana = t.register("Ana").await;
    assert_eq!(post(Some(&ana.token)).await.unwrap().status(), 200);
    // An rmcp client with a bad token does not get in either.
    let config = StreamableHttpClientTransportConfig::with_uri(t.url("/mcp")).auth_header("not-a-session");
    assert!(ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.is_err());
}

/// A flood of registrations is cut by the person's rate limit, and stores only what was let in.
#[tokio::test]
async fn registering_mcp_servers_is_rate_limited() {
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_min = 3;
        c.mcp_allow_private = true;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "team").await;
    let (url, _) = shop_server().await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let body = json!({"name": format!("shop{i}"), "url": url, "allowed_tools": ["lookup_order"]});
        statuses.push(t.post(Some(&ana.token), &servers_path(room.workspace_id), body).await.status().as_u16());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(created <= 3, "{statuses:?}");
    let listed: Value = t.get(Some(&ana.token), &servers_path(room.workspace_id)).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), created, "only what was let in is stored");
}

/// Over MCP, a muted member looks but changes nothing, and a flood of calls is cut by the person's
/// own MCP limit (which leaves their chat alone).
#[tokio::test]
async fn mathias_mcp_server_refuses_a_muted_member_and_a_flood() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 5).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "launch").await;
    let now = chrono::Utc::now();
    mathia::adapters::postgres::moderation::mute(
        &t.db().await,
        room.id,
        ana.id,
        now + chrono::Duration::minutes(10),
        "test",
        now,
    )
    .await
    .expect("muted");
    let client = mathia_client(&t, &ana.token).await;
    let note = client
        .call_tool(
            CallToolRequestParams::new("remember_note")
                .with_arguments(args(json!({"room_id": room.id, "text": "muted words"}))),
        )
        .await
        .unwrap();
    assert_eq!(note.is_error, Some(true), "{}", text(&note));
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    assert_eq!(notes.as_array().unwrap().len(), 0, "{notes}");
    // Looking is still allowed, until the limit: 5 calls a minute, this one included.
    let mut refused = None;
    for i in 1..10 {
        let people = client
            .call_tool(CallToolRequestParams::new("room_people").with_arguments(args(json!({"room_id": room.id}))))
            .await
            .unwrap();
        if people.is_error == Some(true) {
            refused = Some((i, text(&people)));
            break;
        }
    }
    let (at, why) = refused.expect("a flood is refused");
    assert_eq!(at, 5, "the muted call and four looks fit in five; the fifth look does not: {why}");
    assert!(why.to_lowercase().contains("mcp tool calls"), "{why}");
    client.cancel().await.unwrap();
}
