//! Group commit for new messages: the ones that arrive while earlier ones are being written
//! go to Postgres together, in one statement and one commit, and each caller gets its own
//! result once that commit is done. An idle server writes each message at once, alone.
//!
//! There is no background task. A caller queues its draft, then either finds its result
//! ready or gets a flush permit and writes whatever is queued (its own draft, if nobody took
//! it yet). The write itself runs in a task of its own, so a caller that gives up midway
//! cannot strand the others waiting on the same commit. That task keeps its permit while there
//! is work: once its batch commits it frees the batch's rooms and takes the next batch in one
//! step, so under load the callers only wait for their answers — none is woken to look at the
//! queue after every commit.
//!
//! Order: drafts are written in the order they were queued, and a room's drafts within one
//! batch take consecutive `seq`s in that order. Two batches may be in flight at once, but never
//! two with the same room: a room's later drafts wait in the queue until its batch commits, so
//! a room's `seq`s follow the queue. Sending stored messages in that order is the caller's part
//! (`App::room_order`): `new_message` queues in turn, then fans out in turn.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use sqlx::PgPool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use uuid::Uuid;

use super::messages::{self, NewMessage, Stored};
use crate::{error::Error, keyring::RoomKeyring};

/// Batches written at the same time.
const FLUSHES_IN_FLIGHT: usize = 2;
/// Drafts per statement.
const MAX_BATCH: usize = 64;

/// A failed batch's error is shared by every caller in it (`Error` is cheap to clone).
type Outcome = Result<Stored, Error>;

struct Queued {
    draft: NewMessage,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct State {
    queued: Vec<Queued>,
    /// Rooms with a batch in flight.
    busy_rooms: HashSet<Uuid>,
}

impl State {
    /// The queued drafts that may go now, in queue order: not those of a room with a batch in
    /// flight, which wait for it to commit.
    fn take_batch(&mut self) -> Vec<Queued> {
        if self.busy_rooms.is_empty() && self.queued.len() <= MAX_BATCH {
            let batch = std::mem::take(&mut self.queued);
            self.busy_rooms.extend(batch.iter().map(|q| q.draft.room_id));
            return batch;
        }
        let mut batch = Vec::new();
        let mut rest = Vec::with_capacity(self.queued.len());
        for q in self.queued.drain(..) {
            if batch.len() < MAX_BATCH && !self.busy_rooms.contains(&q.draft.room_id) {
                batch.push(q);
            } else {
                rest.push(q);
            }
        }
        self.queued = rest;
        for q in &batch {
            self.busy_rooms.insert(q.draft.room_id);
        }
        batch
    }

    /// A batch is over: its rooms may go again.
    fn free(&mut self, rooms: &[Uuid]) {
        for room in rooms {
            self.busy_rooms.remove(room);
        }
    }

    /// A batch is over: its rooms may go again, and the next batch is taken at once.
    fn free_and_take(&mut self, rooms: &[Uuid]) -> Vec<Queued> {
        self.free(rooms);
        self.take_batch()
    }
}

pub struct GroupCommit {
    db: PgPool,
    keyring: Arc<RoomKeyring>,
    state: Mutex<State>,
    flushes: Arc<Semaphore>,
    /// Told when a flush task ends without finishing (it panicked): the callers waiting on it
    /// look at the queue again.
    flush_lost: Notify,
}

/// A draft in the writer's queue; [`PendingWrite::outcome`] waits for its commit.
#[must_use = "a queued draft may wait in the queue until an outcome is awaited"]
pub struct PendingWrite {
    writer: Arc<GroupCommit>,
    result: oneshot::Receiver<Outcome>,
}

impl GroupCommit {
    pub fn new(db: PgPool, keyring: Arc<RoomKeyring>) -> Arc<Self> {
        Arc::new(Self {
            db,
            keyring,
            state: Mutex::new(State::default()),
            flushes: Arc::new(Semaphore::new(FLUSHES_IN_FLIGHT)),
            flush_lost: Notify::new(),
        })
    }

    /// Stores one message, together with whatever else is waiting; returns once it is committed.
    pub async fn insert(self: &Arc<Self>, draft: NewMessage) -> Outcome {
        self.submit(draft).outcome().await
    }

    /// Puts a draft in the queue, behind everything queued before it.
    pub fn submit(self: &Arc<Self>, draft: NewMessage) -> PendingWrite {
        let (done, result) = oneshot::channel();
        self.state.lock().expect("group commit queue").queued.push(Queued { draft, done });
        PendingWrite { writer: Arc::clone(self), result }
    }

    /// Writes `batch`, then each batch that became ready meanwhile, until none is; then gives
    /// the permit back.
    async fn flush_while_queued(self: Arc<Self>, mut batch: Vec<Queued>, permit: OwnedSemaphorePermit) {
        loop {
            let rooms = RoomsBack { writer: &self, rooms: batch.iter().map(|q| q.draft.room_id).collect() };
            self.flush(batch).await;
            batch = rooms.free_and_take_next();
            if batch.is_empty() {
                break;
            }
        }
        drop(permit);
    }

    async fn flush(&self, batch: Vec<Queued>) {
        let (drafts, waiting): (Vec<NewMessage>, Vec<oneshot::Sender<Outcome>>) =
            batch.into_iter().map(|q| (q.draft, q.done)).unzip();
        match messages::store(&self.db, &self.keyring, &drafts).await {
            Ok(stored) => {
                for (done, stored) in waiting.into_iter().zip(stored) {
                    let _ = done.send(Ok(stored));
                }
            }
            Err(e) => {
                for done in waiting {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
}

impl PendingWrite {
    /// Waits for the commit: the caller writes whatever is queued when a flush permit is free,
    /// or waits for the flush that took its draft.
    pub async fn outcome(mut self) -> Outcome {
        let writer = self.writer;
        loop {
            // Registered before looking at the queue, so a flush lost meanwhile is not missed.
            let lost = writer.flush_lost.notified();
            tokio::select! {
                biased;
                outcome = &mut self.result => return outcome.unwrap_or_else(|_| Err(flush_lost())),
                permit = writer.flushes.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    let batch = writer.state.lock().expect("group commit queue").take_batch();
                    if batch.is_empty() {
                        // This draft went with another caller's flush, or waits for its room's
                        // batch to commit: the task writing that batch takes it next.
                        drop(permit);
                        tokio::select! {
                            outcome = &mut self.result => return outcome.unwrap_or_else(|_| Err(flush_lost())),
                            () = lost => continue,
                        }
                    }
                    tokio::spawn(Arc::clone(&writer).flush_while_queued(batch, permit));
                }
            }
        }
    }
}

/// A batch's rooms, given back to the queue once the batch is over. Normally by
/// [`RoomsBack::free_and_take_next`]; if the flush panics, by the drop, which also wakes the
/// waiting callers so that one of them takes the queue on.
struct RoomsBack<'a> {
    writer: &'a GroupCommit,
    rooms: Vec<Uuid>,
}

impl RoomsBack<'_> {
    /// Frees the rooms and takes the next batch, under one lock: no other flush can take the
    /// drafts that waited for these rooms in between, and nothing queued is left unseen.
    fn free_and_take_next(mut self) -> Vec<Queued> {
        let rooms = std::mem::take(&mut self.rooms);
        self.writer.state.lock().expect("group commit queue").free_and_take(&rooms)
    }
}

impl Drop for RoomsBack<'_> {
    fn drop(&mut self) {
        if self.rooms.is_empty() {
            return;
        }
        self.writer.state.lock().expect("group commit queue").free(&self.rooms);
        self.writer.flush_lost.notify_waiters();
    }
}

/// The flush task ended without answering (it panicked): the message may or may not be
/// stored, which a resend with the same `client_msg_id` settles.
fn flush_lost() -> Error {
    Error::internal(anyhow::anyhow!("the group commit ended without a result"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageKind;

    fn queue(state: &mut State, room: Uuid, body: &str) {
        let draft = NewMessage {
            room_id: room,
            kind: MessageKind::User,
            author_id: None,
            body: body.to_owned(),
            client_msg_id: None,
            require_member: None,
            at: chrono::Utc::now(),
            reply_to: None,
            stopped: false,
            attachment_id: None,
        };
        state.queued.push(Queued { draft, done: oneshot::channel().0 });
    }

    fn bodies(batch: &[Queued]) -> Vec<&str> {
        batch.iter().map(|q| q.draft.body.as_str()).collect()
    }

    #[test]
    fn a_finished_batch_hands_its_rooms_next_drafts_on_in_queue_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut state = State::default();
        queue(&mut state, a, "a1");
        queue(&mut state, b, "b1");
        let first = state.take_batch();
        assert_eq!(bodies(&first), ["a1", "b1"]);
        // While a and b are in flight, their next drafts wait; nothing else may go.
        queue(&mut state, a, "a2");
        queue(&mut state, b, "b2");
        queue(&mut state, a, "a3");
        assert!(state.take_batch().is_empty());
        // b's batch alone is over (the other room still in flight): only b's drafts go.
        assert_eq!(bodies(&state.free_and_take(&[b])), ["b2"]);
        assert_eq!(bodies(&state.free_and_take(&[a, b])), ["a2", "a3"]);
        assert!(state.free_and_take(&[a]).is_empty());
        assert!(state.queued.is_empty() && state.busy_rooms.is_empty());
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_drafts_and_the_rest_go_next() {
        let room = Uuid::new_v4();
        let mut state = State::default();
        for i in 0..MAX_BATCH + 3 {
            queue(&mut state, room, &format!("m{i}"));
        }
        let first = state.take_batch();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].draft.body, "m0");
        let next = state.free_and_take(&[room]);
        assert_eq!(
            bodies(&next),
            [format!("m{MAX_BATCH}"), format!("m{}", MAX_BATCH + 1), format!("m{}", MAX_BATCH + 2)]
        );
    }
}
