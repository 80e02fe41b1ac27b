//! Configuration, read once from the environment (PROTOCOL.md's table) with defaults that make
//! the local mode work on a machine with Postgres and Redis on localhost.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::ports::QueueName;

/// Every environment variable Mathia reads (besides the AWS SDK's own), for checks of deploy
/// files against the code.
pub const ENV_VARS: &[&str] = &[
    "MATHIA_BIND",
    "DATABASE_URL",
    "REDIS_URL",
    "MATHIA_REDIS_PREFIX",
    "MATHIA_MASTER_KEY",
    "MATHIA_RATE_LIMIT_PER_MIN",
    "MATHIA_WS_FRAMES_PER_S",
    "MATHIA_WS_FRAME_BURST",
    "MATHIA_SOCKETS_PER_PERSON",
    "MATHIA_MAX_CONNECTIONS",
    "MATHIA_CONNECTIONS_PER_ADDRESS",
    "MATHIA_IDLE_TIMEOUT_S",
    "MATHIA_HEADER_TIMEOUT_S",
    "MATHIA_HISTORY_PAGES_PER_MIN",
    "MATHIA_MODERATION_BATCH_SIZE",
    "MATHIA_AI_REPLY_COST_CENTS",
    "MATHIA_WELCOME_CREDIT_CENTS",
    "MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY",
    "MATHIA_AI_BASE_URL",
    "MATHIA_AI_API_KEY",
    "MATHIA_AI_MODEL",
    "MATHIA_AI_MODELS",
    "MATHIA_AI_TIMEOUT_S",
    "MATHIA_AI_MAX_TOKENS",
    "MATHIA_AI_DEADLINE_S",
    "MATHIA_AI_REPLY_MAX_CHARS",
    "MATHIA_OPERATOR_TOKEN",
    "MATHIA_MCP_ALLOW_PRIVATE",
    "CALENDLY_BASE_URL",
    "CALENDLY_CLIENT_ID",
    "CALENDLY_CLIENT_SECRET",
    "CALENDLY_REDIRECT_URI",
    "CALENDLY_AUTH_URL",
    "MATHIA_BACKEND",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "MATHIA_CONNECTIONS_TABLE",
    "MATHIA_AI_QUEUE_URL",
    "MATHIA_MODERATION_QUEUE_URL",
    "MATHIA_REMINDERS_QUEUE_URL",
    "MATHIA_QUEUE_PREFIX",
    "MATHIA_WS_ENDPOINT",
    "MATHIA_WS_URL",
    "MATHIA_AWS_ATTEMPT_TIMEOUT_MS",
    "MATHIA_FUNCTIONS_DIR",
    "MATHIA_EMULATOR_WS_BIND",
    "MATHIA_EMULATOR_AWS_BIND",
    "MATHIA_SCHEDULER_INTERVAL_S",
    "MATHIA_STATIC_DIR",
    "MATHIA_FILES_DIR",
    "MATHIA_FILES_BUCKET",
    "RUST_LOG",
];

/// A socket's frame budget by default: 100 frames a second, 200 at once.
pub const WS_FRAMES_PER_S: u32 = 100;
pub const WS_FRAME_BURST: u32 = 200;

/// History pages one person may read a minute, over the socket (`join_room`) and HTTP together.
/// Each reads and decrypts up to a page of messages; a client that reconnects joins each of its
/// rooms and fetches what it missed in each, far below this.
pub const HISTORY_PAGES_PER_MINUTE: u32 = 1200;

/// How many sockets one person may have open at once by default: tabs and devices, with room
/// to spare. Each holds a file descriptor and memory of the process; unbounded, one person could
/// open sockets until nobody else can connect.
pub const SOCKETS_PER_PERSON: usize = 16;

/// Connections one client address may hold open in `mathia-local` by default: an office behind
/// one address, each person with a few tabs' sockets and a browser's HTTP connections.
pub const CONNECTIONS_PER_ADDRESS: usize = 1_024;

/// How long a `mathia-local` connection may pass no byte either way by default: API Gateway's
/// own idle timeout. The web client pings every 25 s; a socket that only listens hears its rooms.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a `mathia-local` HTTP connection may take over a request's head (its line and
/// headers) by default, counted from the connection's start or its previous response: a client
/// sends a head at once, so this closes connections that trickle one, or ask nothing, too.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How many welcome credits workspaces made from one client address get in a day by default.
/// A team makes one workspace and joins it by invite; someone scripting sign-ups for the credit
/// makes one per account, and from the same few addresses.
pub const WELCOME_CREDITS_PER_ADDRESS_PER_DAY: u32 = 10;

/// Which adapters back the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-process registry and queues (the default).
    Local,
    /// DynamoDB, SQS and API Gateway management — on AWS or an emulator.
    Aws,
}

/// Where the AWS resources are. Empty strings count as unset (CloudFormation passes them).
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub endpoint_url: Option<String>,
    pub region: String,
    /// The DynamoDB table of connections (`MATHIA_CONNECTIONS_TABLE`).
    pub connections_table: Option<String>,
    /// Explicit queue URLs; queues without one are looked up by name `<queue_prefix><queue>`.
    pub queue_urls: HashMap<QueueName, String>,
    pub queue_prefix: Option<String>,
    /// API Gateway's management endpoint (or, for a local gateway, its own base URL).
    pub ws_endpoint: Option<String>,
    /// How long one attempt of an AWS call may take (`MATHIA_AWS_ATTEMPT_TIMEOUT_MS`): a hung
    /// DynamoDB, SQS, S3 or management API call fails and is retried instead of holding the
    /// invocation until its Lambda timeout.
    pub attempt_timeout: Duration,
}

/// One attempt of an AWS call by default; a long poll gets its wait on top.
pub const DEFAULT_AWS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: "us-east-1".into(),
            connections_table: None,
            queue_urls: HashMap::new(),
            queue_prefix: None,
            ws_endpoint: None,
            attempt_timeout: DEFAULT_AWS_ATTEMPT_TIMEOUT,
        }
    }
}

/// Everything a handler needs to know about its surroundings.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub backend: Backend,
    pub aws: AwsSettings,
    pub database_url: String,
    pub redis_url: String,
    /// Prefixed to every Redis key, so several deployments (or test runs) can share one Redis.
    pub redis_prefix: String,
    pub master_key: [u8; 32],
    pub rate_limit_per_min: u32,
    /// Wrong passwords for one account in a sliding minute before its logins are refused (429).
    pub login_failures_per_account: u32,
    /// Wrong passwords from one client address in a sliding minute before its logins are refused.
    pub login_failures_per_address: u32,
    /// Each socket's frame budget: frames a second, sustained…
    pub ws_frames_per_s: u32,
    /// …and frames at once.
    pub ws_frame_burst: u32,
    /// Sockets one person may have open at once (`MATHIA_SOCKETS_PER_PERSON`).
    pub sockets_per_person: usize,
    /// TCP connections (sockets and HTTP) one `mathia-local` process holds at once
    /// (`MATHIA_MAX_CONNECTIONS`); unset, its open-file limit less what it keeps for itself.
    pub max_connections: Option<usize>,
    /// Of those, the most from one client address (`MATHIA_CONNECTIONS_PER_ADDRESS`).
    pub connections_per_address: usize,
    /// How long a `mathia-local` connection may pass no byte either way before it is closed
    /// (`MATHIA_IDLE_TIMEOUT_S`)…
    pub idle_timeout: Duration,
    /// How long an HTTP connection may take over a request's head, counted from its start or its
    /// previous response (`MATHIA_HEADER_TIMEOUT_S`).
    pub header_timeout: Duration,
    pub moderation_batch_size: u32,
    pub ai_reply_cost_cents: i64,
    /// Credited to every new workspace's wallet, as a ledger entry.
    pub welcome_credit_cents: i64,
    /// Welcome credits given to workspaces made from one client address in a day
    /// (`MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY`).
    pub welcome_credits_per_address_per_day: u32,
    pub ai_base_url: Option<String>,
    pub ai_api_key: Option<String>,
    pub ai_model: Option<String>,
    /// Further OpenAI-compatible endpoints a workspace owner may choose (`MATHIA_AI_MODELS`);
    /// the one above stays the default (id `default`).
    pub ai_models: Vec<AiModelConfig>,
    /// How long the model may stay silent (before its first byte, or between chunks).
    pub ai_idle_timeout: Duration,
    /// Sent as `max_tokens` with every model request.
    pub ai_max_tokens: u32,
    /// The longest a model reply may stream, start to end; then it is cut with a note.
    pub ai_deadline: Duration,
    /// The most characters of model text a stored reply keeps; then it is cut with a note.
    pub ai_reply_max_chars: usize,
    /// The most rounds of tool calls in one reply; the round after them is answered without
    /// tools.
    pub ai_tool_rounds: u32,
    /// How long one tool call may take; then the model is told it timed out.
    pub ai_tool_timeout: Duration,
    /// The platform operator's credential for `POST /api/wallet/credit`; unset → nobody may.
    pub operator_token: Option<String>,
    /// Whether a workspace's MCP servers may be on private, loopback or link-local addresses
    /// (`MATHIA_MCP_ALLOW_PRIVATE`, `false` by default): for servers inside the operator's own
    /// network. Otherwise the assistant reaches only the public internet (`mcp::egress`).
    pub mcp_allow_private: bool,
    pub calendly_base_url: String,
    /// Calendly's OAuth server (`https://auth.calendly.com`).
    pub calendly_auth_url: String,
    /// The OAuth app, when configured: (client id, client secret, redirect URI).
    pub calendly_oauth: Option<(String, String, String)>,
    pub ticket_ttl: Duration,
    /// History pages one person may read a minute (`limits::history_page`,
    /// `MATHIA_HISTORY_PAGES_PER_MIN`).
    pub history_pages_per_minute: u32,
    pub session_ttl: Duration,
    /// How often the scheduler ticks in `mathia-local` (EventBridge runs it each minute on AWS).
    pub scheduler_every: Duration,
    /// Where the local file store keeps (sealed) files.
    pub files_dir: PathBuf,
    /// The S3 bucket for files (AWS backend); unset → the local folder.
    pub files_bucket: Option<String>,
    /// Where `static/` lives for the local gateway.
    pub static_dir: PathBuf,
    /// The WebSocket URL clients open (`MATHIA_WS_URL`), when it is not `/ws` on the page's own
    /// host: API Gateway's `wss://…execute-api…/{stage}` on AWS. `GET /api/config` hands it out.
    pub ws_url: Option<String>,
}

impl std::fmt::Debug for Config {
    // Hand-written so that keys and URLs with passwords never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .field("moderation_batch_size", &self.moderation_batch_size)
            .field("ai_configured", &self.ai_base_url.is_some())
            .finish_non_exhaustive()
    }
}

/// One model a workspace owner may choose: an OpenAI-compatible endpoint. Its URL and key are
/// the operator's: only `id` and `label` are ever shown to people.
#[derive(Clone, PartialEq, Eq)]
pub struct AiModelConfig {
    pub id: String,
    pub label: String,
    pub base_url: String,
    pub model: Option<String>,
    /// Read from the environment variable the entry names in `api_key_env`.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for AiModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiModelConfig").field("id", &self.id).field("label", &self.label).finish_non_exhaustive()
    }
}

/// The id of the model configured by `MATHIA_AI_BASE_URL` / `MATHIA_AI_MODEL`.
pub const DEFAULT_AI_MODEL: &str = "default";

/// `MATHIA_AI_MODELS`: a JSON list of `{id, label, base_url, model?, api_key_env?}`; keys come
/// from the named environment variables (`env`), never from the list itself.
pub fn parse_ai_models(json: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<AiModelConfig>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        id: String,
        label: String,
        base_url: String,
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        api_key_env: Option<String>,
    }
    let entries: Vec<Entry> =
        serde_json::from_str(json).context("a JSON list of {id, label, base_url, model?, api_key_env?}")?;
    let mut out: Vec<AiModelConfig> = Vec::with_capacity(entries.len());
    for e in entries {
        let id = e.id.trim().to_owned();
        if id.is_empty() || id.len() > 64 || id == DEFAULT_AI_MODEL {
            bail!("model id {id:?}: 1 to 64 characters, and not {DEFAULT_AI_MODEL:?}");
        }
        if out.iter().any(|m| m.id == id) {
            bail!("model id {id:?} appears twice");
        }
        if !(e.base_url.starts_with("http://") || e.base_url.starts_with("https://")) {
            bail!("model {id:?}: base_url must be an http(s) URL");
        }
        let api_key = match &e.api_key_env {
            Some(name) => Some(env(name).with_context(|| format!("model {id:?}: {name} is not set"))?),
            None => None,
        };
        out.push(AiModelConfig { id, label: e.label.trim().to_owned(), base_url: e.base_url, model: e.model, api_key });
    }
    Ok(out)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A duration in whole seconds, at least one.
fn seconds(name: &str, default: Duration) -> anyhow::Result<Duration> {
    at_least_one(name, default.as_secs()).map(Duration::from_secs)
}

/// A count or period where zero would refuse everyone (no message, frame, socket or page ever
/// allowed) or make a timer panic: refused at start rather than served as a product that does
/// nothing.
fn at_least_one<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialEq + From<u8>,
    T::Err: std::fmt::Display,
{
    let n = parsed(name, default)?;
    if n == T::from(0) {
        bail!("{name} must be at least 1");
    }
    Ok(n)
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} is not valid: {e}")),
    }
}

impl Config {
    /// Reads the environment. `MATHIA_MASTER_KEY` falls back to a key kept in
    /// `.mathia/master.key` (created on first use) so the local mode works out of the box.
    pub fn from_env() -> anyhow::Result<Self> {
        let master_key = match var("MATHIA_MASTER_KEY") {
            Some(b64) => decode_master_key(&b64).context("MATHIA_MASTER_KEY")?,
            None if var("AWS_LAMBDA_FUNCTION_NAME").is_some() => {
                bail!("MATHIA_MASTER_KEY must be set on Lambda")
            }
            None => local_master_key(std::path::Path::new(".mathia"))?,
        };
        let endpoint_url = var("AWS_ENDPOINT_URL");
        let backend = match var("MATHIA_BACKEND").as_deref() {
            Some("aws") => Backend::Aws,
            Some("local") => Backend::Local,
            Some(other) => bail!("MATHIA_BACKEND must be `local` or `aws`, not {other:?}"),
            None if endpoint_url.is_some() => Backend::Aws,
            None => Backend::Local,
        };
        let mut queue_urls = HashMap::new();
        for (name, key) in [
            (QueueName::Ai, "MATHIA_AI_QUEUE_URL"),
            (QueueName::Moderation, "MATHIA_MODERATION_QUEUE_URL"),
            (QueueName::Reminders, "MATHIA_REMINDERS_QUEUE_URL"),
        ] {
            if let Some(url) = var(key) {
                queue_urls.insert(name, url);
            }
        }
        let aws = AwsSettings {
            endpoint_url,
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into()),
            connections_table: var("MATHIA_CONNECTIONS_TABLE"),
            queue_urls,
            queue_prefix: var("MATHIA_QUEUE_PREFIX"),
            ws_endpoint: var("MATHIA_WS_ENDPOINT"),
            attempt_timeout: match parsed(
                "MATHIA_AWS_ATTEMPT_TIMEOUT_MS",
                DEFAULT_AWS_ATTEMPT_TIMEOUT.as_millis() as u64,
            )? {
                0 => bail!("MATHIA_AWS_ATTEMPT_TIMEOUT_MS must be at least 1"),
                ms => Duration::from_millis(ms),
            },
        };
        Ok(Self {
            bind: parsed("MATHIA_BIND", SocketAddr::from(([127, 0, 0, 1], 8000)))?,
            backend,
            aws,
            database_url: var("DATABASE_URL").unwrap_or_else(|| "postgres://localhost/mathia".into()),
            redis_url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: var("MATHIA_REDIS_PREFIX").unwrap_or_else(|| "mathia:".into()),
            master_key,
            rate_limit_per_min: at_least_one("MATHIA_RATE_LIMIT_PER_MIN", 30)?,
            login_failures_per_account: at_least_one("MATHIA_LOGIN_FAILURES_PER_ACCOUNT", 10)?,
            login_failures_per_address: at_least_one("MATHIA_LOGIN_FAILURES_PER_ADDRESS", 50)?,
            ws_frames_per_s: at_least_one("MATHIA_WS_FRAMES_PER_S", WS_FRAMES_PER_S)?,
            ws_frame_burst: at_least_one("MATHIA_WS_FRAME_BURST", WS_FRAME_BURST)?,
            sockets_per_person: at_least_one("MATHIA_SOCKETS_PER_PERSON", SOCKETS_PER_PERSON)?,
            max_connections: Some(parsed("MATHIA_MAX_CONNECTIONS", 0_usize)?).filter(|&n| n > 0),
            connections_per_address: at_least_one("MATHIA_CONNECTIONS_PER_ADDRESS", CONNECTIONS_PER_ADDRESS)?,
            idle_timeout: seconds("MATHIA_IDLE_TIMEOUT_S", IDLE_TIMEOUT)?,
            header_timeout: seconds("MATHIA_HEADER_TIMEOUT_S", HEADER_TIMEOUT)?,
            moderation_batch_size: at_least_one("MATHIA_MODERATION_BATCH_SIZE", 20)?,
            ai_reply_cost_cents: parsed("MATHIA_AI_REPLY_COST_CENTS", 1)?,
            welcome_credit_cents: parsed("MATHIA_WELCOME_CREDIT_CENTS", 500)?,
            welcome_credits_per_address_per_day: parsed(
                "MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY",
                WELCOME_CREDITS_PER_ADDRESS_PER_DAY,
            )?,
            ai_base_url: var("MATHIA_AI_BASE_URL"),
            ai_api_key: var("MATHIA_AI_API_KEY"),
            ai_model: var("MATHIA_AI_MODEL"),
            ai_models: match var("MATHIA_AI_MODELS") {
                Some(json) => parse_ai_models(&json, var).context("MATHIA_AI_MODELS")?,
                None => Vec::new(),
            },
            ai_idle_timeout: seconds("MATHIA_AI_TIMEOUT_S", Duration::from_secs(30))?,
            ai_max_tokens: at_least_one("MATHIA_AI_MAX_TOKENS", 1024)?,
            ai_deadline: seconds("MATHIA_AI_DEADLINE_S", Duration::from_secs(120))?,
            ai_reply_max_chars: at_least_one("MATHIA_AI_REPLY_MAX_CHARS", 16_000)?,
            ai_tool_rounds: parsed("MATHIA_AI_TOOL_ROUNDS", 4)?,
            ai_tool_timeout: seconds("MATHIA_AI_TOOL_TIMEOUT_S", Duration::from_secs(15))?,
            operator_token: var("MATHIA_OPERATOR_TOKEN"),
            mcp_allow_private: parsed("MATHIA_MCP_ALLOW_PRIVATE", false)?,
            calendly_base_url: var("CALENDLY_BASE_URL").unwrap_or_else(|| "https://api.calendly.com".into()),
            calendly_auth_url: var("CALENDLY_AUTH_URL").unwrap_or_else(|| "https://auth.calendly.com".into()),
            calendly_oauth: match (
                var("CALENDLY_CLIENT_ID"),
                var("CALENDLY_CLIENT_SECRET"),
                var("CALENDLY_REDIRECT_URI"),
            ) {
                (Some(id), Some(secret), Some(redirect)) => Some((id, secret, redirect)),
                _ => None,
            },
            ticket_ttl: Duration::from_secs(60),
            history_pages_per_minute: at_least_one("MATHIA_HISTORY_PAGES_PER_MIN", HISTORY_PAGES_PER_MINUTE)?,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            scheduler_every: seconds("MATHIA_SCHEDULER_INTERVAL_S", Duration::from_secs(5))?,
            files_dir: var("MATHIA_FILES_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".mathia/files")),
            files_bucket: var("MATHIA_FILES_BUCKET"),
            static_dir: var("MATHIA_STATIC_DIR").map(PathBuf::from).unwrap_or_else(default_static_dir),
            ws_url: var("MATHIA_WS_URL"),
        })
    }

    /// A configuration for tests and tools: local defaults, the given database and key.
    pub fn for_database(database_url: &str, master_key: [u8; 32]) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend: Backend::Local,
            aws: AwsSettings::default(),
            database_url: database_url.to_owned(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "mathia:".into(),
            master_key,
            rate_limit_per_min: 30,
            login_failures_per_account: 10,
            login_failures_per_address: 50,
            ws_frames_per_s: WS_FRAMES_PER_S,
            ws_frame_burst: WS_FRAME_BURST,
            sockets_per_person: SOCKETS_PER_PERSON,
            max_connections: None,
            connections_per_address: CONNECTIONS_PER_ADDRESS,
            idle_timeout: IDLE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            moderation_batch_size: 20,
            ai_reply_cost_cents: 1,
            welcome_credit_cents: 500,
            welcome_credits_per_address_per_day: WELCOME_CREDITS_PER_ADDRESS_PER_DAY,
            ai_base_url: None,
            ai_api_key: None,
            ai_model: None,
            ai_models: Vec::new(),
            ai_idle_timeout: Duration::from_secs(30),
            ai_max_tokens: 1024,
            ai_deadline: Duration::from_secs(120),
            ai_reply_max_chars: 16_000,
            ai_tool_rounds: 4,
            ai_tool_timeout: Duration::from_secs(15),
            operator_token: None,
            mcp_allow_private: false,
            calendly_base_url: "https://api.calendly.com".into(),
            calendly_auth_url: "https://auth.calendly.com".into(),
            calendly_oauth: None,
            ticket_ttl: Duration::from_secs(60),
            history_pages_per_minute: HISTORY_PAGES_PER_MINUTE,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            scheduler_every: Duration::from_secs(5),
            files_dir: std::env::temp_dir().join(format!("mathia-files-{}", uuid::Uuid::new_v4().simple())),
            files_bucket: None,
            static_dir: default_static_dir(),
            ws_url: None,
        }
    }
}

fn default_static_dir() -> PathBuf {
    // `cargo run` from the repo root finds `static/`; a packaged binary sets MATHIA_STATIC_DIR.
    let here = PathBuf::from("static");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../static"))
}

pub fn decode_master_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD.decode(b64.trim()).context("not base64")?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(key) => Ok(key),
        Err(_) => bail!("must decode to 32 bytes, got {}", bytes.len()),
    }
}

fn local_master_key(dir: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("master.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        owner_only(dir, &path)?;
        return decode_master_key(&text).with_context(|| format!("{}", path.display()));
    }
    let key: [u8; 32] = rand::random();
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    owner_only(dir, &path)?;
    // Readable by its owner only.
    let mut file = {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path).with_context(|| format!("cannot create {}", path.display()))?
    };
    std::io::Write::write_all(&mut file, STANDARD.encode(key).as_bytes())?;
    owner_only(dir, &path)?;
    tracing::warn!(
        path = %path.display(),
        "MATHIA_MASTER_KEY is not set: generated a local master key; set MATHIA_MASTER_KEY in production"
    );
    Ok(key)
}

/// The key's folder (0700) and file (0600) are its owner's alone, however they were made: an
/// existing folder, or a key copied in with looser modes, is tightened.
fn owner_only(dir: &std::path::Path, key: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(dir, 0o700), (key, 0o600)] {
            let Ok(meta) = std::fs::metadata(path) else { continue };
            if meta.permissions().mode() & 0o777 != mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot restrict {}", path.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, key);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_generated_master_key_is_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("mathia-key-{}", uuid::Uuid::new_v4().simple())).join(".mathia");
        let key = local_master_key(&dir).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("master.key")), 0o600, "master.key");
        assert_eq!(mode(&dir), 0o700, "the .mathia directory");
        // Read back on the next start.
        assert_eq!(local_master_key(&dir).unwrap(), key);
        // A folder and key left world-readable (an older version, a copy) are tightened on start.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(local_master_key(&dir).unwrap(), key);
        assert_eq!(mode(&dir.join("master.key")), 0o600, "master.key, tightened");
        assert_eq!(mode(&dir), 0o700, "the .mathia directory, tightened");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;

    #[test]
    fn models_read_their_keys_from_the_named_variables_and_refuse_bad_entries() {
        let env = |name: &str| (name == "FAST_KEY").then(|| "sk-fast".to_owned());
        let json = r#"[{"id": "fast", "label": "Fast", "base_url": "http://127.0.0.1:9/v1", "model": "m1", "api_key_env": "FAST_KEY"},
                       {"id": "big", "label": "Big", "base_url": "https://example.com/v1"}]"#;
        let models = parse_ai_models(json, env).unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(models[0].api_key.as_deref(), Some("sk-fast"));
        assert_eq!(models[1].api_key, None);
        assert!(!format!("{models:?}").contains("sk-fast"), "keys stay out of logs");
        for bad in [
            r#"[{"id": "default", "label": "x", "base_url": "http://x"}]"#,
            r#"[{"id": "a", "label": "x", "base_url": "ftp://x"}]"#,
            r#"[{"id": "a", "label": "x", "base_url": "http://x"}, {"id": "a", "label": "y", "base_url": "http://y"}]"#,
            r#"[{"id": "a", "label": "x", "base_url": "http://x", "api_key_env": "MISSING"}]"#,
            r#"[{"id": "a", "label": "x", "base_url": "http://x", "api_key": "inline"}]"#,
            "{}",
        ] {
            assert!(parse_ai_models(bad, env).is_err(), "{bad}");
        }
    }
}
