//! `mathia-local emulate`: the deployment's own artifacts — the eight function binaries on
//! `MATHIA_BACKEND=aws` — run behind stand-ins for the managed parts of AWS, against the AWS
//! services at `AWS_ENDPOINT_URL` (moto in the tests, LocalStack in `docker compose`):
//!
//! - the Lambda service: a Runtime API per instance, instances reused while warm (`runtime`);
//! - API Gateway's WebSocket API and its management API, on their own origin (`websocket`);
//! - the site: `static/` and the HTTP API (payload 2.0), as CloudFront serves them (`site`);
//! - SQS event source mappings and the EventBridge schedule (`sources`);
//! - a pass-through to the AWS services that counts the functions' calls (`aws_calls`).
//!
//! It creates the table, queues (with DLQs) and bucket named by the environment when they are
//! missing. Nothing of Mathia's own logic runs in this process: every request and every job goes
//! through a function binary.

pub mod aws_calls;
pub mod resources;
pub mod runtime;
pub mod sigv4;
mod site;
mod sources;
mod websocket;

use std::{collections::HashMap, future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use axum::{body::Bytes, serve::ListenerExt};
use base64::Engine;
use mathia::{Config, ports::QueueName};
use tokio::{net::TcpListener, sync::watch};

use runtime::{Function, FunctionSpec, InvokeError};

/// The stage of the emulated WebSocket API (the template's default).
const STAGE: &str = "prod";

/// The functions, with the template's timeouts.
const FUNCTIONS: &[(&str, u64)] = &[
    ("ws-connect", 30),
    ("ws-message", 30),
    ("ws-disconnect", 30),
    ("http-api", 30),
    ("ai-worker", 120),
    ("moderation-worker", 60),
    ("reminder-worker", 30),
    ("scheduler", 55),
];

/// `MATHIA_AWS_ATTEMPT_TIMEOUT_MS` for the functions unless it is set: the socket functions'
/// timeout.
const EMULATED_ATTEMPT_TIMEOUT_MS: u64 = 30_000;

/// Instances of one function at once.
const CONCURRENCY: usize = 16;

/// What every part of the emulator shares.
pub struct Emulator {
    functions: HashMap<&'static str, Arc<Function>>,
    sockets: websocket::Connections,
    credentials: sigv4::Expected,
    region: String,
    stage: String,
    api_id: String,
    ws_domain: String,
    static_dir: PathBuf,
    aws_calls: aws_calls::AwsProxy,
}

impl Emulator {
    /// Invokes a function with a JSON event.
    async fn invoke(&self, function: &str, event: &serde_json::Value) -> Result<Bytes, InvokeError> {
        let f = self.functions.get(function).expect("a known function");
        f.invoke(Bytes::from(event.to_string())).await
    }
}

/// Small answers written in two parts (headers, then body) would otherwise wait for the peer's
/// delayed ACK: 40 ms a call through the AWS pass-through (see bench/RESULTS.md).
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Where the emulated stack listens.
pub struct Addresses {
    /// The site: `static/`, `/api/*`, `/_emulator/*`.
    pub site: SocketAddr,
    /// The WebSocket API and its management API.
    pub websocket: SocketAddr,
    /// The pass-through to the AWS services that the functions (and presigned URLs) use.
    pub aws: SocketAddr,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Runs the emulated deployment until `signal` resolves.
pub async fn run(config: Config, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let Some(endpoint) = config.aws.endpoint_url.clone() else {
        bail!("`mathia-local emulate` needs AWS_ENDPOINT_URL: the AWS services to run against (moto or LocalStack)");
    };
    let site = TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
    let beside = |var: &str, offset: u16| -> anyhow::Result<SocketAddr> {
        Ok(match env(var) {
            Some(v) => v.parse().with_context(|| format!("{var} is not an address"))?,
            None if config.bind.port() == 0 => SocketAddr::new(config.bind.ip(), 0),
            None => SocketAddr::new(config.bind.ip(), config.bind.port() + offset),
        })
    };
    let ws_bind = beside("MATHIA_EMULATOR_WS_BIND", 1)?;
    let ws = TcpListener::bind(ws_bind).await.with_context(|| format!("cannot listen on {ws_bind}"))?;
    let aws_bind = beside("MATHIA_EMULATOR_AWS_BIND", 2)?;
    let aws = TcpListener::bind(aws_bind).await.with_context(|| format!("cannot listen on {aws_bind}"))?;
    let addresses = Addresses { site: site.local_addr()?, websocket: ws.local_addr()?, aws: aws.local_addr()? };
    // Functions reach the management API on loopback when the emulator listens everywhere.
    let reachable = |addr: SocketAddr| {
        if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr }
    };
    let ws_local = reachable(addresses.websocket);
    let management_endpoint = format!("http://{ws_local}/{STAGE}");
    let public_ws_url = config.ws_url.clone().unwrap_or_else(|| format!("ws://{ws_local}/{STAGE}"));

    // The stores: migrate once here rather than in eight racing cold starts.
    mathia::adapters::postgres::connect(&config.database_url).await?.close().await;
    let sdk = mathia::adapters::aws::sdk_config(&config.aws).await;
    let names = resources::Names::from_env();
    let created =
        resources::ensure(&sdk, &names).await.with_context(|| format!("cannot set up AWS resources at {endpoint}"))?;

    // The functions reach AWS through the counting pass-through; so do presigned URLs.
    let aws_calls = aws_calls::AwsProxy::new(&endpoint);
    let proxy_url = format!("http://{}", reachable(addresses.aws));
    let credentials = sigv4::Expected {
        access_key_id: env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
        secret_access_key: env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
    };
    let mut function_env: Vec<(String, String)> = vec![
        ("MATHIA_BACKEND".into(), "aws".into()),
        ("AWS_ENDPOINT_URL".into(), proxy_url.clone()),
        ("AWS_REGION".into(), config.aws.region.clone()),
        ("AWS_ACCESS_KEY_ID".into(), credentials.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), credentials.secret_access_key.clone()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("DATABASE_URL".into(), config.database_url.clone()),
        ("REDIS_URL".into(), config.redis_url.clone()),
        ("MATHIA_REDIS_PREFIX".into(), config.redis_prefix.clone()),
        ("MATHIA_MASTER_KEY".into(), base64::engine::general_purpose::STANDARD.encode(config.master_key)),
        ("MATHIA_CONNECTIONS_TABLE".into(), names.table.clone()),
        ("MATHIA_FILES_BUCKET".into(), names.bucket.clone()),
        ("MATHIA_WS_ENDPOINT".into(), management_endpoint.clone()),
        ("MATHIA_WS_URL".into(), public_ws_url.clone()),
        // The stand-ins for AWS share two cores with every function instance: when a crowd
        // leaves at once they answer late, not never, and an attempt cut off at AWS's 5 s is
        // retried into the same queue. Here an attempt may take as long as a socket function.
        (
            "MATHIA_AWS_ATTEMPT_TIMEOUT_MS".into(),
            env("MATHIA_AWS_ATTEMPT_TIMEOUT_MS").unwrap_or_else(|| EMULATED_ATTEMPT_TIMEOUT_MS.to_string()),
        ),
    ];
    for queue in QueueName::ALL {
        function_env.push((queue.url_var().into(), created.queue_urls[&queue].clone()));
    }
    let dir = runtime::functions_dir()?;
    let mut functions = HashMap::new();
    for (name, timeout_s) in FUNCTIONS {
        let binary = dir.join(name);
        if !binary.is_file() {
            bail!(
                "the function binary {} is missing: build them with `cargo build --workspace --bins` \
                 (or set MATHIA_FUNCTIONS_DIR)",
                binary.display()
            );
        }
        let spec = FunctionSpec {
            name,
            binary,
            timeout: Duration::from_secs(*timeout_s),
            memory_mb: 256,
            concurrency: CONCURRENCY,
            env: function_env.clone(),
        };
        functions.insert(*name, Function::new(spec));
    }
    let emulator = Arc::new(Emulator {
        functions,
        sockets: websocket::Connections::default(),
        credentials,
        region: config.aws.region.clone(),
        stage: STAGE.into(),
        api_id: "emulated".into(),
        ws_domain: ws_local.to_string(),
        static_dir: config.static_dir.clone(),
        aws_calls: aws_calls.clone(),
    });

    let (stop, stopped) = watch::channel(false);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mappings = QueueName::ALL
        .into_iter()
        .map(|queue| sources::Mapping {
            function: match queue {
                QueueName::Ai => "ai-worker",
                QueueName::Moderation => "moderation-worker",
                QueueName::Reminders => "reminder-worker",
            },
            queue_url: created.queue_urls[&queue].clone(),
            queue_arn: created.queue_arns[&queue].clone(),
            batch_size: 10,
            concurrency: 4,
        })
        .collect();
    sources::spawn_mappings(emulator.clone(), sqs, mappings, stopped.clone());
    let schedule = Duration::from_secs(env("MATHIA_SCHEDULER_INTERVAL_S").and_then(|s| s.parse().ok()).unwrap_or(60));
    sources::spawn_schedule(emulator.clone(), schedule, stopped.clone());

    // Presigned URLs point at the pass-through; the WebSocket is on its own origin.
    let site_app =
        crate::headers::secure(site::router(emulator.clone()), Some(&public_ws_url), Some(proxy_url.clone()))
            .into_make_service_with_connect_info::<SocketAddr>();
    let ws_app = websocket::router(emulator.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut ws_stop = stopped.clone();
    let ws_server = tokio::spawn(async move {
        axum::serve(ws.tap_io(no_delay), ws_app)
            .with_graceful_shutdown(async move {
                let _ = ws_stop.changed().await;
            })
            .await
    });
    // One plain line on stdout that scripts and tests read the addresses from.
    println!("mathia emulate: site http://{} websocket {public_ws_url}", reachable(addresses.site));
    tracing::info!(
        site = %format!("http://{}", reachable(addresses.site)),
        websocket = %public_ws_url,
        functions = %dir.display(),
        "Mathia's emulated deployment is running"
    );
    let mut aws_stop = stopped.clone();
    tokio::spawn(async move {
        axum::serve(aws.tap_io(no_delay), aws_calls.router())
            .with_graceful_shutdown(async move {
                let _ = aws_stop.changed().await;
            })
            .await
    });
    let mut site_stop = stopped.clone();
    let site_server = axum::serve(site.tap_io(no_delay), site_app).with_graceful_shutdown(async move {
        let _ = site_stop.changed().await;
    });
    tokio::select! {
        r = site_server => r?,
        _ = signal => {}
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), ws_server).await;
    for f in emulator.functions.values() {
        f.shutdown();
    }
    Ok(())
}
