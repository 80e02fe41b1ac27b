//! The server's HTTP API and the WebSocket handshake, as a client sees them.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, client_async_with_config, connect_async_with_config,
    tungstenite::{self, Message, protocol::WebSocketConfig},
};
use uuid::Uuid;

use crate::util::{Error, Result};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PASSWORD: &str = "bench-password-1234";

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    ws_base: String,
}

/// A signed-up user.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    #[allow(dead_code)]
    pub user_id: Uuid,
}

/// What `join_room` answered.
pub struct Joined {
    /// The newest message of the room at join time (id, seq), if any.
    pub last: Option<(Uuid, i64)>,
}

impl Api {
    pub fn new(url: &str) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        let ws_base = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            return Err(Error::new("config", format!("--url must be http://…, got {url}")));
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::new("config", e.to_string()))?;
        Ok(Self { http, base, ws_base })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() { "http_timeout" } else { "http_transport" };
            Error::new(kind, format!("{path}: {e}"))
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Error::new("http_transport", format!("{path}: {e}")))?;
        if !status.is_success() {
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(Error::new(
                format!("http_{}", status.as_u16()),
                format!("{path}: {code} {}", text.chars().take(300).collect::<String>()),
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::new("http_body", format!("{path}: {e}")))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Value> {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn register(&self, email: &str, display_name: &str) -> Result<Session> {
        let v = self
            .post(
                "/api/auth/register",
                None,
                json!({ "email": email, "password": PASSWORD, "display_name": display_name }),
            )
            .await?;
        let token = v["token"].as_str().ok_or_else(|| Error::new("http_body", "register: no token"))?.to_owned();
        let user_id = v["user"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::new("http_body", "register: no user.id"))?;
        Ok(Session { token, user_id })
    }

    /// Profile and goals: the first two onboarding steps.
    pub async fn onboard_start(&self, s: &Session, display_name: &str) -> Result<()> {
        self.put("/api/onboarding/profile", &s.token, json!({ "display_name": display_name, "timezone": "UTC" }))
            .await?;
        self.put("/api/onboarding/goals", &s.token, json!({ "goals": ["bench"] })).await?;
        Ok(())
    }

    /// Signs up and finishes onboarding by creating a workspace.
    pub async fn owner(&self, email: &str, name: &str, workspace: &str) -> Result<Session> {
        let s = self.register(email, name).await?;
        self.onboard_start(&s, name).await?;
        self.put("/api/onboarding/workspace", &s.token, json!({ "name": workspace })).await?;
        Ok(s)
    }

    /// Signs up and finishes onboarding by joining the room an invite is for.
    pub async fn member(&self, email: &str, name: &str, invite_code: &str) -> Result<Session> {
        let s = self.register(email, name).await?;
        self.onboard_start(&s, name).await?;
        self.put("/api/onboarding/workspace", &s.token, json!({ "invite_code": invite_code })).await?;
        Ok(s)
    }

    pub async fn create_room(&self, s: &Session, name: &str) -> Result<Uuid> {
        let v = self.post("/api/rooms", Some(&s.token), json!({ "name": name })).await?;
        v["id"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| Error::new("http_body", "create room: no id"))
    }

    pub async fn invite(&self, s: &Session, room: Uuid) -> Result<String> {
        let v = self.post(&format!("/api/rooms/{room}/invites"), Some(&s.token), json!({ "max_uses": 10000 })).await?;
        v["code"].as_str().map(str::to_owned).ok_or_else(|| Error::new("http_body", "invite: no code"))
    }

    /// Joins another room (and its workspace) by an invite, once onboarded.
    pub async fn accept_invite(&self, s: &Session, code: &str) -> Result<()> {
        self.post(&format!("/api/invites/{code}/accept"), Some(&s.token), json!({})).await?;
        Ok(())
    }

    pub async fn ticket(&self, s: &Session) -> Result<String> {
        let v = self.post("/api/ws-ticket", Some(&s.token), json!({})).await?;
        v["ticket"].as_str().map(str::to_owned).ok_or_else(|| Error::new("http_body", "ws-ticket: no ticket"))
    }

    /// One page of history: `GET /api/rooms/{id}/messages?before|after=…&limit=100`.
    pub async fn history(&self, s: &Session, room: Uuid, cursor: Option<(&str, Uuid)>) -> Result<Value> {
        let mut path = format!("/api/rooms/{room}/messages?limit=100");
        if let Some((name, id)) = cursor {
            path.push_str(&format!("&{name}={id}"));
        }
        self.get(&path, Some(&s.token)).await
    }

    /// Opens `/ws?ticket=…` (the ticket already fetched).
    pub async fn open_ws(&self, ticket: &str) -> Result<Ws> {
        let url = format!("{}/ws?ticket={ticket}", self.ws_base);
        let (ws, _) = connect_async_with_config(url, Some(ws_config()), true).await.map_err(ws_error)?;
        Ok(ws)
    }

    /// Opens `/ws?ticket=…` from `source`, a local address. One source address reaches the
    /// server's port from about 28,000 ephemeral ports (`net.ipv4.ip_local_port_range`), so more
    /// sockets than that take several; every address of 127.0.0.0/8 is on Linux's loopback.
    pub async fn open_ws_from(&self, ticket: &str, source: Option<IpAddr>) -> Result<Ws> {
        let Some(source) = source else { return self.open_ws(ticket).await };
        let io = |e: std::io::Error| Error::new("ws_io", e.to_string());
        let authority =
            self.ws_base.strip_prefix("ws://").ok_or_else(|| Error::new("ws_other", "a source address needs ws://"))?;
        let authority = authority.split('/').next().unwrap_or_default();
        let server = tokio::net::lookup_host(authority)
            .await
            .map_err(io)?
            .find(|a| a.is_ipv4() == source.is_ipv4())
            .ok_or_else(|| Error::new("ws_io", format!("{authority} has no address of {source}'s family")))?;
        let socket = if source.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(io)?;
        socket.bind(SocketAddr::new(source, 0)).map_err(io)?;
        let stream = socket.connect(server).await.map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let url = format!("{}/ws?ticket={ticket}", self.ws_base);
        let (ws, _) =
            client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(ws_config())).await.map_err(ws_error)?;
        Ok(ws)
    }

    /// Ticket + handshake.
    pub async fn connect(&self, s: &Session) -> Result<Ws> {
        let ticket = self.ticket(s).await?;
        self.open_ws(&ticket).await
    }
}

/// tungstenite zero-fills its read buffer up to `read_buffer_size` before every read from the
/// socket, 128 KiB by default: opening thousands of sockets a second, and reading deliveries a
/// batch at a time, that was the load generator's largest cost of its own (bench/RESULTS.md,
/// "the load generator's read buffer"). 16 KiB still takes a server write of a few dozen frames
/// in one or two reads; the buffer grows for a bigger frame.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

pub fn ws_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(resp) => {
            Error::new(format!("ws_{}", resp.status().as_u16()), "handshake refused".to_string())
        }
        tungstenite::Error::Io(e) => Error::new("ws_io", e.to_string()),
        other => Error::new("ws_other", other.to_string()),
    }
}

/// Sends `join_room` and waits for `room_joined` (other frames before it are skipped).
pub async fn join_room(ws: &mut Ws, room: Uuid, timeout: Duration) -> Result<Joined> {
    let frame = json!({ "action": "join_room", "room_id": room }).to_string();
    ws.send(Message::text(frame)).await.map_err(ws_error)?;
    let wait = async {
        while let Some(msg) = ws.next().await {
            let msg = msg.map_err(ws_error)?;
            let Message::Text(text) = msg else { continue };
            let v: Value = match serde_json::from_str(text.as_str()) {
                Ok(v) => v,
                Err(_) => continue,
            };
            match v["type"].as_str() {
                Some("room_joined") if v["room_id"] == json!(room) => {
                    let last = v["messages"]
                        .as_array()
                        .and_then(|m| m.last())
                        .and_then(|m| Some((m["id"].as_str()?.parse().ok()?, m["seq"].as_i64()?)));
                    return Ok(Joined { last });
                }
                Some("error") => {
                    return Err(Error::new(
                        format!("ws_error_{}", v["code"].as_str().unwrap_or("unknown")),
                        v["message"].as_str().unwrap_or("").to_owned(),
                    ));
                }
                _ => {}
            }
        }
        Err(Error::new("ws_closed", "closed before room_joined"))
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| Error::new("timeout", "no room_joined in time"))?
}
