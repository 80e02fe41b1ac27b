//! The Lambda service, as far as a function binary can tell: each instance is a process of the
//! real binary, started with `AWS_LAMBDA_RUNTIME_API` pointing at a Runtime API served here
//! (`GET …/invocation/next`, `POST …/invocation/{id}/response | error`, `POST …/init/error`).
//!
//! An instance handles one event at a time. An invocation takes an idle (warm) instance or, up
//! to the function's concurrency, starts a new one (a cold start); an instance that crashes or
//! times out is killed and replaced by the next cold start.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Serialize;
use tokio::{
    net::TcpListener,
    process::Command,
    sync::{Semaphore, mpsc, oneshot, watch},
};

/// A wait for a free instance this long is logged, as is an invocation that takes a quarter of
/// its function's timeout: what a stalled test's server log should show.
const LONG_WAIT: Duration = Duration::from_secs(5);

/// Why an invocation produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The handler returned an error (`…/error`), as Lambda reports a function error.
    #[error("function error: {0}")]
    Function(String),
    /// The instance exited (a crash, or it failed to start).
    #[error("the instance exited: {0}")]
    Crashed(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot start an instance: {0}")]
    Start(String),
}

/// How a function is run.
#[derive(Clone)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub binary: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// At most this many instances at once (reserved concurrency).
    pub concurrency: usize,
    pub env: Vec<(String, String)>,
}

/// What the emulator measured for one function.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FunctionStats {
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    /// Time from handing the event to an instance until its answer, per invocation.
    pub durations_ms: Vec<f64>,
}

pub struct Function {
    spec: FunctionSpec,
    idle: Mutex<Vec<Arc<Instance>>>,
    slots: Semaphore,
    next_instance: AtomicU64,
    stats: Mutex<FunctionStats>,
}

struct Invocation {
    request_id: String,
    event: Bytes,
    deadline_ms: i64,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
    /// Set once the instance has taken the event from its Runtime API.
    picked_up: Arc<AtomicBool>,
}

/// One running process of a function, with its own Runtime API listener.
struct Instance {
    events: mpsc::Sender<Invocation>,
    state: Arc<InstanceState>,
}

struct InstanceState {
    function: &'static str,
    events: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, InvokeError>>>>,
    /// Set once the process has ended (or is being killed).
    dead: watch::Sender<Option<String>>,
    init_error: Mutex<Option<String>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl InstanceState {
    /// Fails whatever the instance was handling: it will never answer.
    fn die(&self, why: &str) {
        let why = self.init_error.lock().expect("init error lock").clone().unwrap_or_else(|| why.to_owned());
        self.dead.send_replace(Some(why.clone()));
        for (_, reply) in self.pending.lock().expect("pending lock").drain() {
            let _ = reply.send(Err(InvokeError::Crashed(why.clone())));
        }
    }

    fn is_dead(&self) -> bool {
        self.dead.borrow().is_some()
    }

    fn kill(&self) {
        self.dead.send_if_modified(|d| {
            if d.is_none() {
                *d = Some("killed".into());
                true
            } else {
                false
            }
        });
        if let Some(kill) = self.kill.lock().expect("kill lock").take() {
            let _ = kill.send(());
        }
    }
}

impl Function {
    pub fn new(spec: FunctionSpec) -> Arc<Self> {
        Arc::new(Self {
            slots: Semaphore::new(spec.concurrency),
            spec,
            idle: Mutex::default(),
            next_instance: AtomicU64::new(1),
            stats: Mutex::default(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn stats(&self) -> FunctionStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Runs one event through an instance and returns the function's answer. An event that a
    /// warm instance died before taking goes to another instance, as Lambda never hands an
    /// event to a dead one.
    pub async fn invoke(&self, event: Bytes) -> Result<Bytes, InvokeError> {
        let queued = Instant::now();
        let _slot = self.slots.acquire().await.expect("never closed");
        let waited = queued.elapsed();
        if waited >= LONG_WAIT {
            let waited_ms = waited.as_millis() as u64;
            tracing::warn!(function = self.spec.name, waited_ms, "an invocation waited for a free instance");
        }
        // A new instance that dies before taking its event failed to start: that is the answer.
        for _ in 0..3 {
            let picked_up = Arc::new(AtomicBool::new(false));
            let (result, warm) = self.invoke_once(event.clone(), picked_up.clone()).await;
            match result {
                Err(InvokeError::Crashed(_)) if warm && !picked_up.load(Ordering::SeqCst) => continue,
                result => return result,
            }
        }
        Err(InvokeError::Crashed("instances kept dying before taking the event".into()))
    }

    /// One attempt, and whether it went to a warm instance.
    async fn invoke_once(&self, event: Bytes, picked_up: Arc<AtomicBool>) -> (Result<Bytes, InvokeError>, bool) {
        let warm = {
            let mut idle = self.idle.lock().expect("idle lock");
            idle.retain(|i| !i.state.is_dead());
            idle.pop()
        };
        let was_warm = warm.is_some();
        let instance = match warm {
            Some(instance) => instance,
            None => {
                self.stats.lock().expect("stats lock").cold_starts += 1;
                match self.start_instance().await {
                    Ok(instance) => Arc::new(instance),
                    Err(e) => return (Err(InvokeError::Start(format!("{e:#}"))), false),
                }
            }
        };
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        let deadline_ms = chrono::Utc::now().timestamp_millis() + self.spec.timeout.as_millis() as i64;
        let mut dead = instance.state.dead.subscribe();
        let sent = instance.events.send(Invocation { request_id, event, deadline_ms, reply, picked_up }).await;
        let result = match sent {
            Err(_) => Err(InvokeError::Crashed("the instance is gone".into())),
            Ok(()) => tokio::select! {
                answer = answer => answer.unwrap_or_else(|_| Err(InvokeError::Crashed("the instance is gone".into()))),
                why = dead.wait_for(Option::is_some) => {
                    Err(InvokeError::Crashed(why.map(|w| w.clone().unwrap_or_default()).unwrap_or_default()))
                }
                _ = tokio::time::sleep(self.spec.timeout) => {
                    // Lambda stops an instance that overruns its timeout.
                    instance.state.kill();
                    Err(InvokeError::Timeout(self.spec.timeout))
                }
            },
        };
        let took = started.elapsed();
        {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.invocations += 1;
            if result.is_err() {
                stats.errors += 1;
            }
            stats.durations_ms.push(took.as_secs_f64() * 1000.0);
        }
        if !instance.state.is_dead() {
            self.idle.lock().expect("idle lock").push(instance);
        }
        if let Err(e) = &result {
            tracing::warn!(function = self.spec.name, error = %e, "invocation failed");
        } else if took >= self.spec.timeout / 4 {
            let took_ms = took.as_millis() as u64;
            tracing::warn!(function = self.spec.name, took_ms, "a slow invocation");
        }
        (result, was_warm)
    }

    async fn start_instance(&self) -> anyhow::Result<Instance> {
        let number = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let (events_tx, events_rx) = mpsc::channel(1);
        let (kill_tx, kill_rx) = oneshot::channel();
        let state = Arc::new(InstanceState {
            function: self.spec.name,
            events: tokio::sync::Mutex::new(events_rx),
            pending: Mutex::default(),
            dead: watch::Sender::new(None),
            init_error: Mutex::default(),
            kill: Mutex::new(Some(kill_tx)),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?;
        let api = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let (stop_api, api_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, api)
                .with_graceful_shutdown(async move {
                    let _ = api_stopped.await;
                })
                .await;
        });

        let spec = &self.spec;
        let mut command = Command::new(&spec.binary);
        command
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("emulated/{number}"))
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| anyhow::anyhow!("{}: {e}", spec.binary.display()))?;
        tracing::debug!(function = spec.name, instance = number, "instance started");
        let watcher = state.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "killed".to_owned()
                }
            };
            tracing::debug!(function = watcher.function, instance = number, %status, "instance ended");
            watcher.die(&status);
            let _ = stop_api.send(());
        });
        Ok(Instance { events: events_tx, state })
    }

    /// Stops every idle instance (the others end with the process).
    pub fn shutdown(&self) {
        for instance in self.idle.lock().expect("idle lock").drain(..) {
            instance.state.kill();
        }
    }
}

async fn next(State(state): State<Arc<InstanceState>>) -> Response {
    let invocation = state.events.lock().await.recv().await;
    let Some(invocation) = invocation else {
        // No more work for this instance: hold the request as the real API does.
        std::future::pending::<()>().await;
        unreachable!()
    };
    if state.is_dead() {
        let _ = invocation.reply.send(Err(InvokeError::Crashed("the instance is gone".into())));
        return StatusCode::GONE.into_response();
    }
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).expect("a header value");
    headers.insert("Lambda-Runtime-Aws-Request-Id", header(&invocation.request_id));
    headers.insert("Lambda-Runtime-Deadline-Ms", header(&invocation.deadline_ms.to_string()));
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        header(&format!("arn:aws:lambda:us-east-1:000000000000:function:{}", state.function)),
    );
    headers.insert("Lambda-Runtime-Trace-Id", header(&format!("Root=1-{}", uuid::Uuid::new_v4().simple())));
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    invocation.picked_up.store(true, Ordering::SeqCst);
    state.pending.lock().expect("pending lock").insert(invocation.request_id.clone(), invocation.reply);
    (headers, invocation.event).into_response()
}

async fn respond(State(state): State<Arc<InstanceState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    match state.pending.lock().expect("pending lock").remove(&id) {
        Some(reply) => {
            let _ = reply.send(Ok(body));
            StatusCode::ACCEPTED.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn fail(State(state): State<Arc<InstanceState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    match state.pending.lock().expect("pending lock").remove(&id) {
        Some(reply) => {
            let _ = reply.send(Err(InvokeError::Function(String::from_utf8_lossy(&body).into_owned())));
            StatusCode::ACCEPTED.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn init_error(State(state): State<Arc<InstanceState>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    tracing::error!(function = state.function, error = %text, "the function failed to start");
    *state.init_error.lock().expect("init error lock") = Some(text);
    StatusCode::ACCEPTED.into_response()
}

/// The directory holding the function binaries: `MATHIA_FUNCTIONS_DIR`, or beside this
/// executable (where cargo puts the workspace's binaries).
pub fn functions_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MATHIA_FUNCTIONS_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}
