//! A workspace's MCP servers: remote tools (over MCP's streamable HTTP) that the assistant may
//! call, registered by the workspace's owner. Only a server's allow-listed tools are offered,
//! each as `<server>__<tool>`; see [`client`] for the `ToolSource`.
//!
//! Registering checks everything before anything is stored: a short slug name, an http(s) URL
//! without credentials in it and on the public internet (see [`egress`]), a bounded timeout, and
//! tool names that make valid tool names once prefixed. The bearer secret is sealed at rest and
//! never shown again.

pub mod client;
pub mod egress;

use serde::Deserialize;
use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::mcp_servers::{self as store, AddError, NewServer, Server},
    app::App,
    domain::Role,
    error::Error,
};

/// The most servers a workspace may have.
pub const MAX_SERVERS: i64 = 10;
/// The most tools one server may allow.
pub const MAX_ALLOWED_TOOLS: usize = 64;
pub const MIN_TIMEOUT_MS: i32 = 100;
pub const MAX_TIMEOUT_MS: i32 = 30_000;
pub const DEFAULT_TIMEOUT_MS: i32 = 10_000;
/// The model's limit on a tool's name (OpenAI-compatible APIs): `<server>__<tool>` must fit.
pub const MAX_TOOL_NAME: usize = 64;
/// Between a server's name and its tool's in the name the model sees.
pub const SEPARATOR: &str = "__";
const MAX_URL: usize = 2048;
const MAX_TOKEN: usize = 4096;

/// `POST /api/workspaces/{id}/mcp-servers`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub token: Option<String>,
    pub allowed_tools: Vec<String>,
    #[serde(default)]
    pub timeout_ms: Option<i32>,
}

// The secret must not reach a log through `{:?}`.
impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("allowed_tools", &self.allowed_tools)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// A server's name: a short slug, so `<server>__<tool>` stays a valid tool name.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A character the model accepts in a tool's name.
fn tool_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The name the model sees for `tool` of `server`, when it is a valid one.
pub fn tool_name(server: &str, tool: &str) -> Option<String> {
    let name = format!("{server}{SEPARATOR}{tool}");
    (!tool.is_empty() && name.len() <= MAX_TOOL_NAME && name.bytes().all(tool_name_char)).then_some(name)
}

/// An http(s) URL with a host and no credentials in it (a secret goes in `token`, where it is
/// sealed; a URL is shown to the owner as it is). Unless `private` addresses are allowed, its host
/// may not be one (`egress::refused_host`).
fn check_url(url: &str, private: bool) -> crate::Result<String> {
    let bad =
        |why: &str| Error::invalid_field("url", format!("an http or https URL of the server's MCP endpoint: {why}"));
    if url.len() > MAX_URL {
        return Err(bad("too long"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https"));
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad("no host"));
    };
    if let Some(why) = egress::refused_host(host).filter(|_| !private) {
        return Err(bad(&format!("{why}; MCP servers are reached on the public internet only")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("put the secret in `token`, not in the URL"));
    }
    Ok(parsed.to_string())
}

/// A registration that passed [`check`].
struct Checked {
    name: String,
    url: String,
    token: Option<String>,
    allowed_tools: Vec<String>,
    timeout_ms: i32,
}

/// The registration, checked; nothing is stored when any part is wrong.
fn check(reg: &Registration, private: bool) -> crate::Result<Checked> {
    let name = reg.name.trim();
    if !valid_name(name) {
        return Err(Error::invalid_field("name", "1 to 32 of a-z, 0-9, _ and -"));
    }
    let url = check_url(reg.url.trim(), private)?;
    let token = match reg.token.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) if t.len() > MAX_TOKEN || t.chars().any(|c| c.is_control() || c.is_whitespace()) => {
            return Err(Error::invalid_field("token", "a bearer token: at most 4096 characters, no spaces"));
        }
        Some(t) => Some(t.to_owned()),
    };
    if reg.allowed_tools.len() > MAX_ALLOWED_TOOLS {
        return Err(Error::invalid_field("allowed_tools", format!("at most {MAX_ALLOWED_TOOLS} tools")));
    }
    let mut allowed: Vec<String> = Vec::with_capacity(reg.allowed_tools.len());
    for tool in &reg.allowed_tools {
        let tool = tool.trim();
        if tool_name(name, tool).is_none() {
            return Err(Error::invalid_field(
                "allowed_tools",
                format!(
                    "each tool's name: a-z, A-Z, 0-9, _ and -, short enough that `{name}{SEPARATOR}<tool>` has at most {MAX_TOOL_NAME} characters"
                ),
            ));
        }
        if !allowed.iter().any(|t| t == tool) {
            allowed.push(tool.to_owned());
        }
    }
    let timeout_ms = reg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(Error::invalid_field("timeout_ms", format!("from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}")));
    }
    Ok(Checked { name: name.to_owned(), url, token, allowed_tools: allowed, timeout_ms })
}

/// Only the workspace's owner manages its MCP servers: they run with every member's requests.
async fn require_owner(app: &App, workspace_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    if access::workspace_role(app, workspace_id, user_id).await? != Role::Owner {
        return Err(Error::forbidden("owner_only", "only the workspace's owner manages its MCP servers"));
    }
    Ok(())
}

pub async fn list(app: &App, user_id: Uuid, workspace_id: Uuid) -> crate::Result<Vec<Server>> {
    require_owner(app, workspace_id, user_id).await?;
    Ok(store::list(&app.db, workspace_id).await?)
}

pub async fn register(app: &App, user_id: Uuid, workspace_id: Uuid, reg: &Registration) -> crate::Result<Server> {
    require_owner(app, workspace_id, user_id).await?;
    crate::limits::rate_limit(app, user_id, app.clock.now()).await?;
    let Checked { name, url, token, allowed_tools, timeout_ms } = check(reg, app.config.mcp_allow_private)?;
    let new = NewServer {
        workspace_id,
        name: &name,
        url: &url,
        token: token.as_deref(),
        allowed_tools: &allowed_tools,
        timeout_ms,
        created_by: user_id,
    };
    match store::add(&app.db, &app.keyring, &new, MAX_SERVERS).await {
        Ok(server) => {
            tracing::info!(%workspace_id, server_id = %server.id, name = %server.name, "MCP server registered");
            Ok(server)
        }
        Err(AddError::Full) => Err(Error::conflict(
            "mcp_servers_full",
            format!("a workspace has at most {MAX_SERVERS} MCP servers; remove one first"),
        )),
        Err(AddError::NameTaken) => {
            Err(Error::conflict("mcp_server_name_taken", "the workspace has a server of that name"))
        }
        Err(AddError::Db(e)) => Err(e.into()),
    }
}

pub async fn remove(app: &App, user_id: Uuid, workspace_id: Uuid, server_id: Uuid) -> crate::Result<()> {
    require_owner(app, workspace_id, user_id).await?;
    crate::limits::rate_limit(app, user_id, app.clock.now()).await?;
    if !store::delete(&app.db, workspace_id, server_id).await? {
        return Err(Error::not_found("mcp_server_not_found", "no such MCP server in this workspace"));
    }
    tracing::info!(%workspace_id, %server_id, "MCP server removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, url: &str, tools: &[&str]) -> Registration {
        Registration {
            name: name.into(),
            url: url.into(),
            token: None,
            allowed_tools: tools.iter().map(|t| (*t).to_owned()).collect(),
            timeout_ms: None,
        }
    }

    #[test]
    fn checks_names_urls_and_tools() {
        assert!(check(&reg("shop", "https://mcp.example.com/mcp", &["lookup_order"]), false).is_ok());
        assert!(check(&reg("Shop", "https://mcp.example.com/mcp", &[]), false).is_err());
        assert!(check(&reg("", "https://mcp.example.com/mcp", &[]), false).is_err());
        assert!(check(&reg(&"a".repeat(33), "https://mcp.example.com/mcp", &[]), false).is_err());
        assert!(check(&reg("shop", "ftp://mcp.example.com/mcp", &[]), false).is_err());
        assert!(check(&reg("shop", "not a url", &[]), false).is_err());
        assert!(check(&reg("shop", "https://user:pw@mcp.example.com/mcp", &[]), false).is_err());
        assert!(check(&reg("shop", "https://mcp.example.com/mcp", &["bad name"]), false).is_err());
        assert!(check(&reg("shop", "https://mcp.example.com/mcp", &[&"t".repeat(59)]), false).is_err());
        assert!(check(&reg("shop", "https://mcp.example.com/mcp", &[&"t".repeat(58)]), false).is_ok());
        let mut slow = reg("shop", "http://127.0.0.1:9/mcp", &[]);
        slow.timeout_ms = Some(50);
        assert!(check(&slow, true).is_err());
    }

    #[test]
    fn a_private_address_is_registered_only_where_the_operator_allows_it() {
        for url in
            ["http://127.0.0.1:9/mcp", "http://localhost:9/mcp", "http://169.254.169.254/", "http://[fd00::1]/mcp"]
        {
            let Err(Error::Invalid { field, message }) = check(&reg("shop", url, &[]), false) else {
                panic!("{url} was registered");
            };
            assert_eq!(field, Some("url"));
            assert!(message.contains("public internet"), "{message}");
            assert!(check(&reg("shop", url, &[]), true).is_ok(), "{url}");
        }
    }

    #[test]
    fn tool_names_fit_the_models_rules() {
        assert_eq!(tool_name("shop", "lookup_order").as_deref(), Some("shop__lookup_order"));
        assert_eq!(tool_name("shop", "a.b"), None);
        assert_eq!(tool_name("shop", ""), None);
    }
}
