//! `Push` for sockets held by this process: each socket has a bounded outbox drained by its
//! writer task. A full outbox means the client cannot keep up; like API Gateway we then treat
//! the connection as gone rather than buffer without bound.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    domain::ConnectionId,
    ports::{Frame, Push, PushError, Recipient},
};

/// Frames waiting to be written to one socket.
pub type SocketOutbox = mpsc::Receiver<Frame>;

const OUTBOX_CAPACITY: usize = 1024;

#[derive(Default, Clone)]
pub struct LocalPush {
    sockets: Arc<RwLock<HashMap<ConnectionId, mpsc::Sender<Frame>>>>,
}

impl LocalPush {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches a socket: frames pushed to `id` arrive on the returned outbox.
    pub fn attach(&self, id: ConnectionId) -> SocketOutbox {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        self.sockets.write().expect("push lock").insert(id, tx);
        rx
    }

    pub fn detach(&self, id: &ConnectionId) {
        self.sockets.write().expect("push lock").remove(id);
    }

    pub fn holds(&self, id: &ConnectionId) -> bool {
        self.sockets.read().expect("push lock").contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.sockets.read().expect("push lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Push for LocalPush {
    async fn send(&self, to: Recipient<'_>, frame: &Frame) -> Result<(), PushError> {
        self.deliver(to.id, frame)
    }

    async fn close(&self, to: Recipient<'_>) -> Result<(), PushError> {
        if LocalPush::close(self, to.id) { Ok(()) } else { Err(PushError::Gone) }
    }
}

impl LocalPush {
    /// Hands a frame to a socket held here; `Gone` when this process does not hold it.
    pub fn deliver(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError> {
        let sender = self.sockets.read().expect("push lock").get(connection).cloned();
        let Some(sender) = sender else {
            return Err(PushError::Gone);
        };
        sender.try_send(frame.clone()).map_err(|_| PushError::Gone)
    }

    /// Closes a socket held here (the management API's DELETE); false when not held.
    pub fn close(&self, connection: &ConnectionId) -> bool {
        self.sockets.write().expect("push lock").remove(connection).is_some()
    }
}
