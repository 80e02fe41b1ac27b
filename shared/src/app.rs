//! The `App` context every handler runs over: configuration, stores and ports. A Lambda
//! binary, the local gateway and a test all build one and call the same handlers with it.

use std::{collections::HashMap, ops::Deref, sync::Arc};

use sqlx::PgPool;

use crate::{
    adapters::files::local::LocalFileStore,
    adapters::{
        local::{InMemoryConnections, LocalPush, LocalQueue, OfflineResponder, RateWindows, SessionCache, Tickets},
        openai::OpenAiCompatible,
        postgres::group_commit::GroupCommit,
        redis::RedisStore,
    },
    config::Config,
    fair_share::FairSlots,
    keyring::RoomKeyring,
    ports::FileStore,
    ports::{Ai, Clock, Connections, Push, Queue, SystemClock},
    room_order::RoomOrder,
};

#[derive(Clone)]
pub struct App(Arc<AppInner>);

/// A step that runs once a person's message is stored and sent to the room (moderation's
/// buffer, the assistant's request). Features implement it; the list is assembled where the
/// app is wired (`wiring::after_store`) and handed to `chat::post`.
#[async_trait::async_trait]
pub trait AfterStore: Send + Sync {
    fn name(&self) -> &'static str;
    /// Runs on every new message; an error is reported to the sender (the message stays sent).
    async fn run(&self, app: &App, message: &crate::domain::Message) -> crate::Result<()>;
    /// Runs on a message its author edited, as it now reads (moderation looks again).
    async fn after_edit(&self, _app: &App, _message: &crate::domain::Message) -> crate::Result<()> {
        Ok(())
    }
    /// Runs on a message just deleted, with the body it had (moderation judges it now: a
    /// deleted message is never read again).
    async fn after_delete(&self, _app: &App, _message: &crate::domain::Message) -> crate::Result<()> {
        Ok(())
    }
}

pub struct AppInner {
    pub config: Config,
    pub db: PgPool,
    pub redis: RedisStore,
    pub keyring: Arc<RoomKeyring>,
    /// Where shared files live.
    pub files: Arc<dyn FileStore>,
    /// The local folder store, when that is the one in use (it serves its own URLs).
    pub local_files: Option<Arc<LocalFileStore>>,
    pub connections: Arc<dyn Connections>,
    pub push: Arc<dyn Push>,
    pub clock: Arc<dyn Clock>,
    pub queue: Arc<dyn Queue>,
    pub ai: Arc<dyn Ai>,
    /// The models of `MATHIA_AI_MODELS` by id, which a workspace may choose instead of `ai`.
    pub ai_models: HashMap<String, Arc<dyn Ai>>,
    /// The management endpoint of this process's gateway, recorded with every connection it
    /// accepts, when several gateways share one registry (emulated mode). None elsewhere.
    pub own_endpoint: Option<String>,
    /// Per-room order of stores and fan-outs in this process.
    pub room_order: Arc<RoomOrder>,
    /// Where people's messages are written: together with the others arriving at that moment.
    pub message_writer: Arc<GroupCommit>,
    /// The Argon2 slots of this process (`handlers::http::auth`): one per core, with a bounded
    /// queue per client address, served in turn. Kept here rather than in a static so that each
    /// app — each test — has its own.
    pub hashing: Arc<HashSlots>,
    /// Live sessions remembered in front of Postgres, in the one process every change to a
    /// session passes through (`mathia-local`); None where several processes share the database.
    /// Read through `crate::sessions`.
    pub sessions: Option<SessionCache>,
    /// The per-person rate windows in memory, in that same process; None where they are kept in
    /// Redis. Read through `crate::limits`.
    pub rate_windows: Option<RateWindows>,
    /// Socket tickets in memory, in that same process, which both issues and takes them; None
    /// where they are kept in Redis. Read through `crate::realtime`.
    pub tickets: Option<Tickets>,
    /// Connections this process found gone (a push answered 410) lately: each is forgotten
    /// once. Read through `crate::realtime`.
    pub gone: crate::gone::GoneConnections,
}

/// The Argon2 slots of a process: one hash per core at once, since each holds a core and 19 MiB
/// while it runs; per client address at most `HASH_WAITING_PER_SLOT` per slot wait for one, and
/// eight times that in all. Past that a request is refused at once (503 with `Retry-After`)
/// rather than queue everyone, the right passwords too, behind seconds of hashing; and a freed
/// slot goes to the addresses in turn, so one address's flood does not hold everyone else's.
pub type HashSlots = FairSlots;

/// How many requests of one client address may wait for an Argon2 slot, per slot.
const HASH_WAITING_PER_SLOT: usize = 8;

fn hash_slots() -> HashSlots {
    let at_once = std::thread::available_parallelism().map_or(2, |n| n.get());
    FairSlots::new(at_once, at_once * HASH_WAITING_PER_SLOT, 8 * at_once * HASH_WAITING_PER_SLOT)
}

impl App {
    /// The model a workspace chose (`workspaces.ai_model`), or the default one when it chose
    /// none, or one the operator no longer offers.
    pub fn ai_for(&self, model_id: Option<&str>) -> Arc<dyn Ai> {
        model_id.and_then(|id| self.ai_models.get(id)).cloned().unwrap_or_else(|| self.ai.clone())
    }
}

impl Deref for App {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// Builds an `App`; adapters default to the in-process ones.
pub struct AppBuilder {
    config: Config,
    db: PgPool,
    connections: Option<Arc<dyn Connections>>,
    push: Option<Arc<dyn Push>>,
    clock: Option<Arc<dyn Clock>>,
    queue: Option<Arc<dyn Queue>>,
    ai: Option<Arc<dyn Ai>>,
    files: Option<Arc<dyn FileStore>>,
    own_endpoint: Option<String>,
    sole_process: bool,
}

impl App {
    pub fn builder(config: Config, db: PgPool) -> AppBuilder {
        AppBuilder {
            config,
            db,
            connections: None,
            push: None,
            clock: None,
            queue: None,
            ai: None,
            files: None,
            own_endpoint: None,
            sole_process: false,
        }
    }

    /// Connects to Postgres (creating and migrating the database) and builds an `App` with the
    /// in-process adapters.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = crate::adapters::postgres::connect(&config.database_url).await?;
        App::builder(config, db).build()
    }
}

impl AppBuilder {
    pub fn connections(mut self, c: Arc<dyn Connections>) -> Self {
        self.connections = Some(c);
        self
    }

    pub fn push(mut self, p: Arc<dyn Push>) -> Self {
        self.push = Some(p);
        self
    }

    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = Some(c);
        self
    }

    pub fn queue(mut self, q: Arc<dyn Queue>) -> Self {
        self.queue = Some(q);
        self
    }

    pub fn ai(mut self, ai: Arc<dyn Ai>) -> Self {
        self.ai = Some(ai);
        self
    }

    /// Object storage for files (S3); without it, a local folder sealed with room keys.
    pub fn files(mut self, files: Arc<dyn FileStore>) -> Self {
        self.files = Some(files);
        self
    }

    pub fn own_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.own_endpoint = endpoint;
        self
    }

    /// This process is the only one serving its database and Redis prefix, so every logout,
    /// profile change, limited action and socket ticket passes through it: it remembers live
    /// sessions ([`SessionCache`]), counts rate windows ([`RateWindows`]) and keeps socket
    /// tickets ([`Tickets`]) in memory.
    pub fn sole_process(mut self) -> Self {
        self.sole_process = true;
        self
    }

    pub fn build(self) -> anyhow::Result<App> {
        let redis = RedisStore::new(&self.config.redis_url, &self.config.redis_prefix)?;
        let keyring = Arc::new(RoomKeyring::new(&self.config.master_key, self.db.clone()));
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let (files, local_files) = match self.files {
            Some(files) => (files, None),
            None => {
                let local = Arc::new(LocalFileStore::new(
                    self.config.files_dir.clone(),
                    keyring.clone(),
                    clock.clone(),
                    &self.config.master_key,
                ));
                (local.clone() as Arc<dyn FileStore>, Some(local))
            }
        };
        let message_writer = GroupCommit::new(self.db.clone(), keyring.clone());
        Ok(App(Arc::new(AppInner {
            redis,
            keyring,
            files,
            local_files,
            connections: self.connections.unwrap_or_else(|| Arc::new(InMemoryConnections::new())),
            push: self.push.unwrap_or_else(|| Arc::new(LocalPush::new())),
            clock,
            queue: self.queue.unwrap_or_else(|| Arc::new(LocalQueue::detached())),
            own_endpoint: self.own_endpoint,
            ai: self.ai.unwrap_or_else(|| default_ai(&self.config)),
            ai_models: self
                .config
                .ai_models
                .iter()
                .map(|m| {
                    let ai: Arc<dyn Ai> = Arc::new(
                        OpenAiCompatible::new(
                            &m.base_url,
                            m.api_key.clone(),
                            m.model.clone(),
                            self.config.ai_idle_timeout,
                        )
                        .with_max_tokens(self.config.ai_max_tokens),
                    );
                    (m.id.clone(), ai)
                })
                .collect(),
            room_order: Arc::default(),
            hashing: Arc::new(hash_slots()),
            sessions: self.sole_process.then(SessionCache::default),
            rate_windows: self.sole_process.then(RateWindows::new),
            tickets: self.sole_process.then(Tickets::default),
            gone: crate::gone::GoneConnections::default(),
            message_writer,
            config: self.config,
            db: self.db,
        })))
    }
}

/// The configured model, or the honest offline responder when there is none.
fn default_ai(config: &Config) -> Arc<dyn Ai> {
    match &config.ai_base_url {
        Some(url) => Arc::new(
            OpenAiCompatible::new(url, config.ai_api_key.clone(), config.ai_model.clone(), config.ai_idle_timeout)
                .with_max_tokens(config.ai_max_tokens),
        ),
        None => Arc::new(OfflineResponder),
    }
}
