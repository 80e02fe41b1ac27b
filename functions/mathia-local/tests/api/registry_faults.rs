//! The real connection registry with faults a test sets: a registration held at a point, no
//! logout marks kept (as a registry in another process keeps none), or a removal that never
//! returns (a process cut off while forgetting a connection).

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use mathia::{
    domain::ConnectionId,
    ports::{ConnectionInfo, Connections, RegistryError, RoomConnection},
};
use tokio::sync::oneshot;
use uuid::Uuid;

/// One registration held at a point (before or after it reaches the registry) until the test
/// lets it go.
pub struct Pause {
    pub after_registering: bool,
    pub reached: oneshot::Sender<()>,
    pub resume: oneshot::Receiver<()>,
}

/// The real registry, faults off until a test sets them.
pub struct FaultyRegistry {
    pub inner: Arc<dyn Connections>,
    /// Taken by the next registration, which is held there.
    pub pause: Arc<Mutex<Option<Pause>>>,
    /// Off: no logout marks are kept.
    pub keeps_marks: Arc<AtomicBool>,
    /// Some: a removal never returns, once it has removed the connection (`true`) or before.
    pub cut_off_removal: Option<bool>,
}

impl FaultyRegistry {
    pub fn over(inner: Arc<dyn Connections>) -> Self {
        Self { inner, pause: Arc::default(), keeps_marks: Arc::new(AtomicBool::new(true)), cut_off_removal: None }
    }

    async fn hold(pause: Pause) {
        pause.reached.send(()).unwrap();
        pause.resume.await.unwrap();
    }
}

#[async_trait::async_trait]
impl Connections for FaultyRegistry {
    async fn register(&self, info: ConnectionInfo) -> Result<(), RegistryError> {
        let pause = self.pause.lock().unwrap().take();
        match pause {
            Some(p) if !p.after_registering => {
                Self::hold(p).await;
                self.inner.register(info).await
            }
            Some(p) => {
                self.inner.register(info).await?;
                Self::hold(p).await;
                Ok(())
            }
            None => self.inner.register(info).await,
        }
    }
    async fn remove(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        match self.cut_off_removal {
            None => self.inner.remove(id).await,
            Some(removed) => {
                if removed {
                    self.inner.remove(id).await?;
                }
                std::future::pending().await
            }
        }
    }
    async fn get(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        self.inner.get(id).await
    }
    async fn join(&self, id: &ConnectionId, room_id: Uuid) -> Result<bool, RegistryError> {
        self.inner.join(id, room_id).await
    }
    async fn leave(&self, id: &ConnectionId, room_id: Uuid) -> Result<(), RegistryError> {
        self.inner.leave(id, room_id).await
    }
    async fn in_room(&self, room_id: Uuid) -> Result<Vec<RoomConnection>, RegistryError> {
        self.inner.in_room(room_id).await
    }
    async fn of_user(&self, user_id: Uuid) -> Result<Vec<ConnectionInfo>, RegistryError> {
        self.inner.of_user(user_id).await
    }
    async fn rename(&self, user_id: Uuid, display_name: &str) -> Result<HashSet<Uuid>, RegistryError> {
        self.inner.rename(user_id, display_name).await
    }
    async fn older_than(&self, cutoff: DateTime<Utc>) -> Result<Vec<ConnectionId>, RegistryError> {
        self.inner.older_than(cutoff).await
    }
    async fn mark_session_ended(&self, session: &str, ttl: Duration) {
        if self.keeps_marks.load(Ordering::Relaxed) {
            self.inner.mark_session_ended(session, ttl).await;
        }
    }
    async fn session_ended(&self, session: &str) -> Option<bool> {
        match self.keeps_marks.load(Ordering::Relaxed) {
            true => self.inner.session_ended(session).await,
            false => None,
        }
    }
}
