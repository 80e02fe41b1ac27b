//! Group commit for new messages: the ones that arrive while earlier ones are being written
//! go to Postgres together, in one statement and one commit, and each caller gets its own
//! result once that commit is done. An idle server writes each message at once, alone.
//!
//! There is no background task. A caller queues its draft, then either finds its result
//! ready or gets a flush permit and writes whatever is queued (its own draft, if nobody took
//! it yet). The write itself runs in a task of its own, so a caller that gives up midway
//! cannot strand the others waiting on the same commit.
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
use tokio::sync::{Notify, Semaphore, oneshot};
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
}

pub struct GroupCommit {
    db: PgPool,
    keyring: Arc<RoomKeyring>,
    state: Mutex<State>,
    flushes: Arc<Semaphore>,
    /// Told whenever a batch is over and its rooms may go again.
    flushed: Notify,
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
            flushed: Notify::new(),
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

    async fn flush(&self, batch: Vec<Queued>) {
        let (drafts, waiting): (Vec<NewMessage>, Vec<oneshot::Sender<Outcome>>) =
            batch.into_iter().map(|q| (q.draft, q.done)).unzip();
        // Frees the batch's rooms even if the write panics.
        let _rooms = RoomsBack { writer: self, rooms: drafts.iter().map(|d| d.room_id).collect() };
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
            // Registered before looking at the queue, so a flush ending meanwhile is not missed.
            let flushed = writer.flushed.notified();
            tokio::select! {
                biased;
                outcome = &mut self.result => return outcome.unwrap_or_else(|_| Err(flush_lost())),
                permit = writer.flushes.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    let batch = writer.state.lock().expect("group commit queue").take_batch();
                    if batch.is_empty() {
                        // This draft went with another caller's flush, or waits for its room's
                        // batch to commit.
                        drop(permit);
                        tokio::select! {
                            outcome = &mut self.result => return outcome.unwrap_or_else(|_| Err(flush_lost())),
                            () = flushed => continue,
                        }
                    }
                    let this = Arc::clone(&writer);
                    tokio::spawn(async move {
                        this.flush(batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Gives a batch's rooms back to the queue once the batch is over.
struct RoomsBack<'a> {
    writer: &'a GroupCommit,
    rooms: Vec<Uuid>,
}

impl Drop for RoomsBack<'_> {
    fn drop(&mut self) {
        let mut state = self.writer.state.lock().expect("group commit queue");
        for room in &self.rooms {
            state.busy_rooms.remove(room);
        }
        drop(state);
        self.writer.flushed.notify_waiters();
    }
}

/// The flush task ended without answering (it panicked): the message may or may not be
/// stored, which a resend with the same `client_msg_id` settles.
fn flush_lost() -> Error {
    Error::internal(anyhow::anyhow!("the group commit ended without a result"))
}
