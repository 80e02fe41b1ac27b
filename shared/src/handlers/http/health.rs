//! `GET /healthz`: whether Postgres and Redis answer. 503 when Postgres is down (nothing works
//! without it); 200 `degraded` when only Redis is down (HTTP still works).

use axum::{extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::extract::Json;
use crate::app::App;

/// How long each dependency gets to answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "`{status, postgres, redis}`"), (status = 503, description = "Postgres is down")))]
pub async fn healthz(State(app): State<App>) -> (StatusCode, Json<Value>) {
    // A probe must answer promptly: a pool waiting for a dead Postgres would hold it 3 s.
    let (pg, redis) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&app.db)),
        tokio::time::timeout(PROBE_TIMEOUT, app.redis.ping())
    );
    let pg_ok = matches!(pg, Ok(Ok(_)));
    let redis_ok = matches!(redis, Ok(Ok(_)));
    let status = match (pg_ok, redis_ok) {
        (true, true) => "ok",
        (true, false) => "degraded",
        _ => "down",
    };
    let code = if pg_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "down" };
    (code, Json(json!({ "status": status, "postgres": word(pg_ok), "redis": word(redis_ok) })))
}

/// `GET /api/config`: what a browser needs to know before it connects, chiefly where the
/// WebSocket is. `ws_url` is null when it is `/ws` on the page's own host (`mathia-local`).
#[utoipa::path(get, path = "/api/config", tag = "health", security(()),
    responses((status = 200, description = "`{ws_url}`: the WebSocket URL, or null for `/ws` on this host")))]
pub async fn client_config(State(app): State<App>) -> Json<Value> {
    Json(json!({ "ws_url": app.config.ws_url }))
}
