//! Mathia's own MCP server at `/mcp` (streamable HTTP, stateless, JSON responses): Mathia's
//! tools (`wiring::tools`) for other agents, acting for the person whose session token comes
//! with each request. Over MCP there is no room the call was asked in, so every room tool needs
//! a `room_id` of a room the person is a member of (`ToolCtx::room` checks it).
//!
//! Stateless, so that any instance — or any Lambda invocation — can answer any request: no MCP
//! session is kept between requests.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use serde_json::Value;
use uuid::Uuid;

use super::super::extract::AuthUser;
use crate::{
    ai::tools::{Tool, ToolCtx, call_in_time},
    app::App,
    protocol::WsError,
    wiring,
};

/// The person a `/mcp` request acts for, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Uuid);

/// `/mcp` needs the same bearer session token as the API: without a valid one the request is
/// answered `401` here, before rmcp reads it.
pub async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match AuthUser::from_request_parts(&mut parts, &app).await {
        Ok(auth) => {
            parts.extensions.insert(Caller(auth.user.id));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /mcp`, for the OpenAPI document only: rmcp's service answers the route, so this
/// function is never called.
#[utoipa::path(post, path = "/mcp", tag = "mcp",
    responses((status = 200, description = "a JSON-RPC response (MCP streamable HTTP, stateless): `initialize`, `tools/list`, `tools/call`"),
              (status = 401, description = "`unauthorized`, `invalid_token`")))]
#[allow(dead_code, reason = "documents the route rmcp serves")]
pub async fn endpoint() {}

/// The rmcp service mounted at `/mcp` (wrapped in [`authenticate`] by the router).
pub fn service(app: App) -> StreamableHttpService<MathiaMcp, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // rmcp checks `Host` against loopback names by default, against DNS rebinding: a web page
        // reaching a local server with the browser's ambient credentials. Here every request
        // must carry a bearer token, which a browser never adds by itself, and the host differs
        // by deployment (localhost, API Gateway's domain, a custom domain), so the check is off.
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(MathiaMcp { app: app.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub struct MathiaMcp {
    app: App,
}

fn caller(context: &RequestContext<RoleServer>) -> Result<Uuid, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .map(|c| c.0)
        // `authenticate` runs first; a request without a caller would be a wiring mistake.
        .ok_or_else(|| ErrorData::invalid_request("sign in first", None))
}

fn mcp_tool(tool: &dyn Tool) -> rmcp::model::Tool {
    let spec = tool.spec();
    let schema = match spec.parameters {
        Value::Object(schema) => schema,
        _ => serde_json::Map::new(),
    };
    rmcp::model::Tool::new(spec.name, spec.description, Arc::new(schema))
}

impl ServerHandler for MathiaMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Mathia's tools act for the person whose session token you use. Room tools need `room_id`: \
             a room that person is a member of.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        caller(&context)?;
        Ok(ListToolsResult::with_all_items(wiring::tools().iter().map(|t| mcp_tool(*t)).collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let asker_id = caller(&context)?;
        let Some(tool) = wiring::tools().iter().find(|t| t.spec().name == request.name) else {
            return Err(ErrorData::invalid_params(format!("there is no tool named {:?}", request.name), None));
        };
        let app = &self.app;
        // Each call is one more action of the person's: it counts against their limit.
        if let Err(e) = crate::limits::per_person_limit(app, "mcp", "MCP tool calls", asker_id, app.clock.now()).await {
            return Ok(refused(e).into());
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let ctx = ToolCtx { app, asker_id, room_id: None };
        let outcome = call_in_time(*tool, &ctx, args).await;
        let ok = outcome.is_ok();
        tracing::info!(tool = %request.name, user_id = %asker_id, ok, "MCP tool called");
        Ok(match outcome {
            Ok(out) => CallToolResult::structured(out.result),
            Err(e) => refused(e),
        }
        .into())
    }
}

/// A refusal or failure as the tool's error result: the protocol's message, never a cause.
fn refused(e: crate::Error) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(WsError::from(e).message)])
}
