//! A workspace's MCP servers as a [`ToolSource`]: for each reply, each server is connected to
//! (streamable HTTP, with its bearer secret), its tools are listed within its timeout, and the
//! allow-listed ones are offered as `<server>__<tool>`. The connections live as long as the
//! reply's tools do and close when they are dropped.
//!
//! A server that cannot be reached, refuses the secret or answers too slowly offers no tools
//! (with a warning in the log); the reply goes on with the others. Nothing here logs the secret,
//! the arguments or the results: they may hold people's words.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ClientConfig},
    service::RunningService,
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{egress, tool_name};
use crate::{
    adapters::postgres::mcp_servers::{self as store, Connectable},
    ai::tools::{Tool, ToolCtx, ToolOutput, ToolSource},
    app::App,
    error::Error,
    ports::ToolSpec,
};

/// The most characters of a server's error text passed on to the model.
const MAX_ERROR_CHARS: usize = 500;
/// The most characters of a tool's description offered to the model.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// The tools of the workspace's MCP servers.
pub struct McpTools;

#[async_trait]
impl ToolSource for McpTools {
    fn name(&self) -> &'static str {
        "mcp"
    }

    async fn tools(&self, app: &App, workspace_id: Uuid) -> Vec<Arc<dyn Tool>> {
        let servers = match store::connectable(&app.db, &app.keyring, workspace_id).await {
            Ok(servers) => servers,
            Err(e) => {
                tracing::warn!(error = %e, %workspace_id, "MCP servers could not be read: none offered");
                return Vec::new();
            }
        };
        // Servers that allow nothing are not even connected to.
        let servers = servers.into_iter().filter(|s| !s.server.allowed_tools.is_empty());
        // Connect to them all at once: a slow one costs its own timeout, not the sum.
        let private = app.config.mcp_allow_private;
        let found = futures::future::join_all(servers.map(|s| offered(s, private))).await;
        found.into_iter().flatten().collect()
    }
}

/// One open connection, shared by the tools it offers; closed when the last one is dropped.
struct Connection {
    server: String,
    server_id: Uuid,
    timeout: Duration,
    service: RunningService<RoleClient, ClientConfig>,
}

/// A server's allow-listed tools, or none when it cannot be reached in time, or (unless
/// `private` addresses are allowed) is not on the public internet (`egress`).
async fn offered(s: Connectable, private: bool) -> Vec<Arc<dyn Tool>> {
    let server = &s.server;
    let timeout = Duration::from_millis(u64::try_from(server.timeout_ms).unwrap_or(10_000));
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.url.as_str());
    if let Some(token) = &s.token {
        // Sent as `Authorization: Bearer <token>`.
        config = config.auth_header(token.as_str());
    }
    let transport = if private {
        StreamableHttpClientTransport::from_config(config)
    } else {
        // Registered before the rules changed: an address in the URL is not resolved, so it is
        // checked here; a name is checked by the client's resolver, whatever it means now.
        let host = reqwest::Url::parse(&server.url).ok().and_then(|u| u.host_str().map(str::to_owned));
        if host.as_deref().is_some_and(egress::refused_address) {
            tracing::warn!(server = %server.name, server_id = %server.id,
                "MCP server on an address off the public internet: it offers no tools");
            return Vec::new();
        }
        StreamableHttpClientTransport::with_client(egress::public_client(), config)
    };
    // Connecting (the initialize handshake) and listing share the server's timeout.
    let listed = tokio::time::timeout(timeout, async {
        let service = ClientConfig::default().serve(transport).await.map_err(|e| e.to_string())?;
        let tools = service.list_all_tools().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((service, tools))
    })
    .await;
    let (service, listed) = match listed {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => {
            tracing::warn!(server = %server.name, server_id = %server.id, %error, "MCP server unreachable: it offers no tools");
            return Vec::new();
        }
        Err(_) => {
            tracing::warn!(server = %server.name, server_id = %server.id, timeout_ms = server.timeout_ms,
                "MCP server did not list its tools in time: it offers no tools");
            return Vec::new();
        }
    };
    let connection = Arc::new(Connection { server: server.name.clone(), server_id: server.id, timeout, service });
    listed
        .into_iter()
        .filter(|t| server.allowed_tools.iter().any(|a| a.as_str() == t.name.as_ref()))
        .filter_map(|t| {
            let name = tool_name(&server.name, &t.name)?;
            let description: String =
                t.description.as_deref().unwrap_or("").chars().take(MAX_DESCRIPTION_CHARS).collect();
            let description = format!("{description} (from the MCP server `{}`)", server.name).trim().to_owned();
            let spec = ToolSpec { name, description, parameters: Value::Object((*t.input_schema).clone()) };
            Some(Arc::new(McpTool { connection: connection.clone(), remote: t.name.to_string(), spec }) as Arc<dyn Tool>)
        })
        .collect()
}

/// One of a server's tools, under its prefixed name.
struct McpTool {
    connection: Arc<Connection>,
    /// Its name on the server.
    remote: String,
    spec: ToolSpec,
}

impl McpTool {
    fn failed(&self, what: impl std::fmt::Display) -> Error {
        let what: String = what.to_string().chars().take(MAX_ERROR_CHARS).collect();
        Error::conflict(
            "tool_failed",
            format!("the MCP server `{}` could not run `{}`: {what}", self.connection.server, self.remote),
        )
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    /// What a remote tool does cannot be known, so its outcome is kept per job like any
    /// change: a job delivered again does not call it again.
    fn changes_things(&self) -> bool {
        true
    }

    async fn call(&self, _ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let Value::Object(arguments) = args else {
            return Err(Error::invalid("the arguments must be a JSON object"));
        };
        let request = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        let conn = &self.connection;
        let result = match tokio::time::timeout(conn.timeout, conn.service.call_tool(request)).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                tracing::warn!(server = %conn.server, server_id = %conn.server_id, tool = %self.remote, error = %e,
                    "MCP tool call failed");
                return Err(self.failed(e));
            }
            Err(_) => {
                tracing::warn!(server = %conn.server, server_id = %conn.server_id, tool = %self.remote,
                    "MCP tool call timed out");
                return Err(Error::conflict(
                    "tool_timeout",
                    format!(
                        "the MCP server `{}` did not answer `{}` within {} ms",
                        conn.server,
                        self.remote,
                        conn.timeout.as_millis()
                    ),
                ));
            }
        };
        let text = text_of(&result);
        if result.is_error == Some(true) {
            return Err(self.failed(if text.is_empty() { "it reported an error".to_owned() } else { text }));
        }
        let summary = format!("{} answered", self.spec.name);
        let mut out = json!({ "text": text });
        if let Some(structured) = result.structured_content {
            out["structured"] = structured;
        }
        Ok(ToolOutput::new(out, summary))
    }
}

/// The text blocks of a result, one after another.
fn text_of(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n")
}
