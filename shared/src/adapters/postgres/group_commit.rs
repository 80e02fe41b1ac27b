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
//! batch take consecutive `seq`s in that order. Two batches may be in flight at once, so a
//! caller that needs a room's messages stored and sent in order holds the room's lock
//! (`App::room_order`) around the write and the fan-out, as `new_message` does.

use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::{Semaphore, oneshot};

use super::messages::{self, MessageDraft, MessageStoreError, Stored};
use crate::keyring::RoomKeyring;

/// Batches written at the same time.
const FLUSHES_IN_FLIGHT: usize = 2;
/// Drafts per statement.
const MAX_BATCH: usize = 64;

type Outcome = Result<Stored, MessageStoreError>;

struct Queued {
    draft: MessageDraft,
    done: oneshot::Sender<Outcome>,
}

pub struct GroupCommit {
    db: PgPool,
    keyring: Arc<RoomKeyring>,
    queued: Mutex<Vec<Queued>>,
    flushes: Arc<Semaphore>,
}

impl GroupCommit {
    pub fn new(db: PgPool, keyring: Arc<RoomKeyring>) -> Arc<Self> {
        Arc::new(Self {
            db,
            keyring,
            queued: Mutex::new(Vec::new()),
            flushes: Arc::new(Semaphore::new(FLUSHES_IN_FLIGHT)),
        })
    }

    /// Stores one message, together with whatever else is waiting; returns once it is committed.
    pub async fn insert(self: &Arc<Self>, draft: MessageDraft) -> Outcome {
        let (done, mut result) = oneshot::channel();
        self.queued.lock().expect("group commit queue").push(Queued { draft, done });
        loop {
            tokio::select! {
                biased;
                outcome = &mut result => return outcome.unwrap_or_else(|_| Err(flush_lost())),
                permit = self.flushes.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    let batch: Vec<Queued> = {
                        let mut queued = self.queued.lock().expect("group commit queue");
                        let n = queued.len().min(MAX_BATCH);
                        queued.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        // Another caller took this draft: its flush answers.
                        drop(permit);
                        return result.await.unwrap_or_else(|_| Err(flush_lost()));
                    }
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        this.flush(batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    async fn flush(&self, batch: Vec<Queued>) {
        let (drafts, waiting): (Vec<MessageDraft>, Vec<oneshot::Sender<Outcome>>) =
            batch.into_iter().map(|q| (q.draft, q.done)).unzip();
        match messages::insert_many(&self.db, &self.keyring, &drafts).await {
            Ok(stored) => {
                for (done, stored) in waiting.into_iter().zip(stored) {
                    let _ = done.send(Ok(stored));
                }
            }
            Err(e) => {
                for done in waiting {
                    let _ = done.send(Err(same_error(&e)));
                }
            }
        }
    }
}

/// The flush task ended without answering (it panicked): the message may or may not be
/// stored, which a resend with the same `client_msg_id` settles.
fn flush_lost() -> MessageStoreError {
    MessageStoreError::Db(sqlx::Error::Protocol("the group commit ended without a result".into()))
}

/// One failure, told to every caller of the batch: an unreachable Postgres stays recognisable
/// as such (`is_unavailable`), anything else keeps its text.
fn same_error(e: &MessageStoreError) -> MessageStoreError {
    let db = match e {
        MessageStoreError::Db(e) | MessageStoreError::Keyring(crate::keyring::KeyringError::Db(e)) => e,
        other => return MessageStoreError::Db(sqlx::Error::Protocol(other.to_string())),
    };
    MessageStoreError::Db(match db {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Protocol(other.to_string()),
    })
}
