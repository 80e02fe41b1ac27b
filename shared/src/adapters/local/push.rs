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

/// What became of a frame offered to a socket's outbox.
enum Offered {
    Queued,
    Full,
    Closed,
}

impl Held {
    fn offer(&self, frame: &Frame) -> Offered {
        match self.frames.try_send(frame.clone()) {
            Ok(()) => Offered::Queued,
            Err(TrySendError::Full(_)) => Offered::Full,
            Err(TrySendError::Closed(_)) => Offered::Closed,
        }
    }
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

    async fn send_many(&self, to: &[Recipient<'_>], frame: &Frame) -> Vec<Result<(), PushError>> {
        self.deliver_many(to, frame).into_iter().map(|r| r.unwrap_or(Err(PushError::Gone))).collect()
    }

    async fn close(&self, to: Recipient<'_>) -> Result<(), PushError> {
        if LocalPush::close(self, to.id) { Ok(()) } else { Err(PushError::Gone) }
    }
}

impl LocalPush {
    /// Hands a frame to a socket held here; `Gone` when this process does not hold it, or no
    /// longer does because its outbox was full (the socket is then closed with 1013).
    pub fn deliver(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError> {
        let offered = self.sockets.read().expect("push lock").get(connection).map(|held| held.offer(frame));
        self.settle(connection, offered.unwrap_or(Offered::Closed))
    }

    /// [`deliver`](Self::deliver) to each recipient, with one look at the sockets for all of
    /// them (a room's fan-out); `None` for a connection this process does not hold.
    pub fn deliver_many(&self, to: &[Recipient<'_>], frame: &Frame) -> Vec<Option<Result<(), PushError>>> {
        let offered: Vec<Option<Offered>> = {
            let sockets = self.sockets.read().expect("push lock");
            to.iter().map(|r| sockets.get(r.id).map(|held| held.offer(frame))).collect()
        };
        to.iter().zip(offered).map(|(r, o)| o.map(|o| self.settle(r.id, o))).collect()
    }

    fn settle(&self, connection: &ConnectionId, offered: Offered) -> Result<(), PushError> {
        match offered {
            Offered::Queued => Ok(()),
            Offered::Full => {
                tracing::debug!(%connection, "outbox full: closing the socket");
                self.let_go(connection, CloseReason::Overloaded);
                Err(PushError::Gone)
            }
            Offered::Closed => Err(PushError::Gone),
        }
    }

    /// Closes a socket held here (the management API's DELETE, a logout); false when not held.
    pub fn close(&self, connection: &ConnectionId) -> bool {
        self.let_go(connection, CloseReason::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ConnectionId {
        ConnectionId::new(s)
    }

    #[tokio::test]
    async fn a_room_fan_out_queues_for_held_sockets_and_lets_go_of_a_full_one() {
        let push = LocalPush::new();
        let (a, b, c, elsewhere) = (id("a"), id("b"), id("c"), id("elsewhere"));
        let mut outbox_a = push.attach(a.clone());
        let mut outbox_b = push.attach(b.clone());
        let outbox_c = push.attach(c.clone());
        let filler = Frame::from_bytes(bytes::Bytes::from_static(b"{}"));
        for _ in 0..OUTBOX_CAPACITY {
            push.deliver(&c, &filler).unwrap();
        }
        let frame = Frame::from_bytes(bytes::Bytes::from_static(b"{\"type\":\"new_message\"}"));
        let to: Vec<Recipient<'_>> =
            [&a, &elsewhere, &b, &c].into_iter().map(|id| Recipient { id, endpoint: None }).collect();

        let results = push.deliver_many(&to, &frame);
        assert!(matches!(results[0], Some(Ok(()))));
        assert!(results[1].is_none(), "a socket this process does not hold is not answered for");
        assert!(matches!(results[2], Some(Ok(()))));
        assert!(matches!(results[3], Some(Err(PushError::Gone))), "a full outbox: gone");
        assert_eq!(outbox_a.recv().await.unwrap().bytes(), frame.bytes());
        assert_eq!(outbox_b.recv().await.unwrap().bytes(), frame.bytes());
        assert_eq!(outbox_c.close_reason(), Some(CloseReason::Overloaded), "its writer closes it with 1013");
        assert!(!push.holds(&c) && push.holds(&a) && push.holds(&b));

        let answers = Push::send_many(&push, &to, &frame).await;
        assert_eq!(answers.len(), 4);
        assert!(answers[0].is_ok() && answers[2].is_ok());
        assert!(matches!(answers[1], Err(PushError::Gone)) && matches!(answers[3], Err(PushError::Gone)));
    }
}
