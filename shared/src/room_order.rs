//! Per-room order inside one process: every connection sees a room's messages in the order
//! they were stored. (Across processes clients order by `seq`.)
//!
//! Each piece of work on a room takes a [`Turn`], first come first served. A turn has two
//! points its successor may wait for:
//! - *queued*: the turn's message has its place in the writer's queue (see
//!   `adapters::postgres::group_commit`), so the next message may queue behind it;
//! - *done*: the turn's work is over, fan-out included.
//!
//! A new message waits for its predecessor to be queued, queues itself, and is committed while
//! the messages after it queue up; it waits for its predecessor to be done only before it is
//! acknowledged and sent to the room. Anything else (an edit, the assistant's reply, a system
//! message) takes the whole turn with [`RoomOrder::lock`]: it starts once its predecessor is
//! done and lets its successor queue only once it is done itself. Dropping a turn passes both
//! points on: at once if the turns before it are past them, otherwise as soon as they are. So
//! a refused, failed or cancelled piece of work neither holds the room up nor lets the work
//! after it overtake the work before it.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Default)]
pub struct RoomOrder {
    /// The last turn taken in each room with work in progress.
    tails: Mutex<HashMap<Uuid, Tail>>,
    next_id: AtomicU64,
}

/// What the next turn of a room waits for.
struct Tail {
    id: u64,
    queued: oneshot::Receiver<()>,
    done: oneshot::Receiver<()>,
}

impl RoomOrder {
    /// Takes the room's next turn without waiting for anything.
    pub fn enter(self: &Arc<Self>, room_id: Uuid) -> Turn {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queued_tx, queued_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let before =
            self.tails.lock().expect("room order").insert(room_id, Tail { id, queued: queued_rx, done: done_rx });
        let (before_queued, before_done) = before.map(|t| (t.queued, t.done)).unzip();
        Turn {
            order: Arc::clone(self),
            room_id,
            id,
            before_queued,
            before_done,
            queued: Some(queued_tx),
            done: Some(done_tx),
        }
    }

    /// Takes the room's next turn whole: returns once everything before it is done; the turn
    /// lasts until the returned value is dropped.
    pub async fn lock(self: &Arc<Self>, room_id: Uuid) -> Turn {
        let mut turn = self.enter(room_id);
        turn.wait_done_before().await;
        turn
    }

    #[cfg(test)]
    fn rooms_in_progress(&self) -> usize {
        self.tails.lock().expect("room order").len()
    }
}

/// One place in a room's order; see the module documentation.
pub struct Turn {
    order: Arc<RoomOrder>,
    room_id: Uuid,
    id: u64,
    before_queued: Option<oneshot::Receiver<()>>,
    before_done: Option<oneshot::Receiver<()>>,
    /// Dropping a sender is the signal.
    queued: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// Waits until the turn before this one has queued its message (or is done).
    pub async fn wait_queued_before(&mut self) {
        // Awaited in place, so a wait cancelled midway leaves it for `drop` to pass on.
        if let Some(before) = self.before_queued.as_mut() {
            // Sent or dropped: either way the predecessor is past that point.
            let _ = before.await;
        }
        self.before_queued = None;
    }

    /// This turn's message is queued: the next turn may queue its own.
    pub fn mark_queued(&mut self) {
        self.queued.take();
    }

    /// Waits until the turn before this one is over.
    pub async fn wait_done_before(&mut self) {
        self.wait_queued_before().await;
        if let Some(before) = self.before_done.as_mut() {
            let _ = before.await;
        }
        self.before_done = None;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Points the turns ahead have already passed need no waiting.
        for before in [&mut self.before_queued, &mut self.before_done] {
            if before.as_mut().is_some_and(|rx| !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))) {
                *before = None;
            }
        }
        if self.before_queued.is_none() && self.before_done.is_none() {
            forget(&self.order, self.room_id, self.id);
            return;
        }
        // Ended before the turns ahead of it: its successor is released only when they are,
        // and its entry stays meanwhile, so a turn taken now still waits for them.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (before_queued, before_done) = (self.before_queued.take(), self.before_done.take());
        let (queued, done) = (self.queued.take(), self.done.take());
        let (order, room_id, id) = (Arc::clone(&self.order), self.room_id, self.id);
        runtime.spawn(async move {
            if let Some(before) = before_queued {
                let _ = before.await;
            }
            drop(queued);
            if let Some(before) = before_done {
                let _ = before.await;
            }
            drop(done);
            forget(&order, room_id, id);
        });
    }
}

/// Removes a room's entry if `id` is still its last turn.
fn forget(order: &RoomOrder, room_id: Uuid, id: u64) {
    let mut tails = order.tails.lock().expect("room order");
    if tails.get(&room_id).is_some_and(|t| t.id == id) {
        tails.remove(&room_id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    const SOON: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_message_queues_behind_the_one_before_and_is_sent_after_it() {
        let order = Arc::new(RoomOrder::default());
        let room = Uuid::now_v7();
        let mut first = order.enter(room);
        let mut second = order.enter(room);
        first.wait_queued_before().await;
        assert!(timeout(SOON, second.wait_queued_before()).await.is_err(), "queued before the first");
        first.mark_queued();
        timeout(SOON, second.wait_queued_before()).await.expect("the first is queued");
        // Committed early, the second still waits for the first to be sent.
        assert!(timeout(SOON, second.wait_done_before()).await.is_err(), "sent before the first");
        drop(first);
        timeout(SOON, second.wait_done_before()).await.expect("the first is done");
    }

    #[tokio::test]
    async fn a_whole_turn_waits_for_every_message_before_it_and_holds_the_next() {
        let order = Arc::new(RoomOrder::default());
        let room = Uuid::now_v7();
        let mut message = order.enter(room);
        message.mark_queued();
        let lock = {
            let order = Arc::clone(&order);
            tokio::spawn(async move { order.lock(room).await })
        };
        tokio::time::sleep(SOON).await;
        assert!(!lock.is_finished(), "the lock came before the message was done");
        let mut next = order.enter(room);
        drop(message);
        let whole = timeout(SOON, lock).await.expect("the message is done").unwrap();
        // A whole turn lets the next message queue only when it is over.
        assert!(timeout(SOON, next.wait_queued_before()).await.is_err());
        drop(whole);
        timeout(SOON, next.wait_queued_before()).await.expect("the lock is released");
        timeout(SOON, next.wait_done_before()).await.expect("nothing before is left");
    }

    #[tokio::test]
    async fn rooms_do_not_wait_for_each_other_and_are_forgotten_when_idle() {
        let order = Arc::new(RoomOrder::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let held = order.lock(a).await;
        timeout(SOON, order.lock(b)).await.expect("another room is free");
        let mut after = order.enter(a);
        assert!(timeout(SOON, after.wait_done_before()).await.is_err());
        drop(held);
        assert_eq!(order.rooms_in_progress(), 1, "room a still has a turn");
        drop(after);
        assert_eq!(order.rooms_in_progress(), 0);
    }

    #[tokio::test]
    async fn a_dropped_turn_releases_the_room() {
        let order = Arc::new(RoomOrder::default());
        let room = Uuid::now_v7();
        let abandoned = order.enter(room);
        let mut next = order.enter(room);
        drop(abandoned);
        timeout(SOON, next.wait_queued_before()).await.expect("released by the drop");
        timeout(SOON, next.wait_done_before()).await.expect("released by the drop");
    }

    /// A duplicate or a failed write ends its turn early: the message after it must still
    /// wait for the one before it.
    #[tokio::test]
    async fn a_turn_ended_early_does_not_let_the_next_overtake_the_one_before() {
        let order = Arc::new(RoomOrder::default());
        let room = Uuid::now_v7();
        let mut first = order.enter(room);
        let refused = order.enter(room);
        let mut third = order.enter(room);
        drop(refused);
        assert!(timeout(SOON, third.wait_queued_before()).await.is_err(), "queued before the first");
        first.mark_queued();
        timeout(SOON, third.wait_queued_before()).await.expect("the first is queued");
        assert!(timeout(SOON, third.wait_done_before()).await.is_err(), "sent before the first");
        // A turn taken now also waits for the first.
        let mut fourth = order.enter(room);
        assert!(timeout(SOON, fourth.wait_done_before()).await.is_err());
        drop(first);
        timeout(SOON, third.wait_done_before()).await.expect("the first is done");
        drop(third);
        timeout(SOON, fourth.wait_done_before()).await.expect("everything before is done");
        drop(fourth);
        tokio::time::sleep(SOON).await;
        assert_eq!(order.rooms_in_progress(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_lock_still_holds_the_room_for_what_came_before() {
        let order = Arc::new(RoomOrder::default());
        let room = Uuid::now_v7();
        let first = order.enter(room);
        assert!(timeout(SOON, order.lock(room)).await.is_err(), "cancelled while waiting");
        let mut next = order.enter(room);
        assert!(timeout(SOON, next.wait_done_before()).await.is_err(), "overtook the first");
        drop(first);
        timeout(SOON, next.wait_done_before()).await.expect("the first is done");
    }
}
