//! `Push` for sockets held by this process: each socket has a bounded outbox drained by its
//! writer task. A full outbox means the client cannot keep up: rather than buffer without bound
//! (or forget the connection while its socket stays open and deaf), the socket is let go and
//! its writer closes it with 1013 ("try again later"), which clients reconnect on.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    watch,
};

use crate::{
    domain::ConnectionId,
    ports::{Frame, Push, PushError, Recipient},
};

const OUTBOX_CAPACITY: usize = 1024;

/// Why this process let go of a socket: its writer closes it with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// DeleteConnection (the management API, a logout): 1000.
    Closed,
    /// The outbox overflowed, the client did not keep up: 1013, try again later.
    Overloaded,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Closed => 1000,
            Self::Overloaded => 1013,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Closed => "closed by the server",
            Self::Overloaded => "too far behind; reconnect",
        }
    }
}

/// Frames waiting to be written to one socket, and the signal that the process let go of it.
pub struct SocketOutbox {
    frames: mpsc::Receiver<Frame>,
    closing: watch::Receiver<Option<CloseReason>>,
}

impl SocketOutbox {
    pub async fn recv(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Frame> {
        self.frames.try_recv().ok()
    }

    /// Resolves once the process lets go of the socket (closed, overloaded, detached).
    pub fn closing(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closing.clone()
    }

    /// Why the socket was let go of, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        *self.closing.borrow()
    }
}

struct Held {
    frames: mpsc::Sender<Frame>,
    closing: watch::Sender<Option<CloseReason>>,
}

#[derive(Default, Clone)]
pub struct LocalPush {
    sockets: Arc<RwLock<HashMap<ConnectionId, Held>>>,
}

impl LocalPush {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches a socket: frames pushed to `id` arrive on the returned outbox.
    pub fn attach(&self, id: ConnectionId) -> SocketOutbox {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (closing_tx, closing_rx) = watch::channel(None);
        self.sockets.write().expect("push lock").insert(id, Held { frames: tx, closing: closing_tx });
        SocketOutbox { frames: rx, closing: closing_rx }
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

    /// Lets go of a socket held here, telling its writer why; false when not held.
    fn let_go(&self, connection: &ConnectionId, reason: CloseReason) -> bool {
        let held = self.sockets.write().expect("push lock").remove(connection);
        match held {
            Some(held) => {
                let _ = held.closing.send(Some(reason));
                true
            }
            None => false,
        }
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
    /// Hands a frame to a socket held here; `Gone` when this process does not hold it, or no
    /// longer does because its outbox was full (the socket is then closed with 1013).
    pub fn deliver(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError> {
        let sender = self.sockets.read().expect("push lock").get(connection).map(|h| h.frames.clone());
        let Some(sender) = sender else {
            return Err(PushError::Gone);
        };
        match sender.try_send(frame.clone()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                tracing::debug!(%connection, "outbox full: closing the socket");
                self.let_go(connection, CloseReason::Overloaded);
                Err(PushError::Gone)
            }
            Err(TrySendError::Closed(_)) => Err(PushError::Gone),
        }
    }

    /// Closes a socket held here (the management API's DELETE, a logout); false when not held.
    pub fn close(&self, connection: &ConnectionId) -> bool {
        self.let_go(connection, CloseReason::Closed)
    }
}
