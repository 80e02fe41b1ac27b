//! Moderation-buffer pushes go to Redis together: the ones made while an earlier push is on the
//! wire wait, then leave in one pipeline — one round trip and one transaction for all of them —
//! and each caller gets its own buffer length back. Under load that is one round trip per burst
//! instead of one per message; alone, a push leaves at once.
//!
//! There is no background task, as in the group commit: a caller queues its push, then either
//! finds its answer ready or takes the one permit and sends whatever is queued. The round trip
//! runs in a task of its own that answers everyone before giving the permit back, so a caller
//! that gives up midway strands nobody, and a caller that gets the permit with nothing queued
//! already has its answer. Should that task die unanswered, its callers get an error and
//! moderate their messages on their own, as when Redis is down.

use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

use super::RedisDown;

/// Pushes per pipeline; the rest wait for the next.
const MAX_PUSHES: usize = 256;

type Answer = Result<usize, RedisDown>;

struct Push {
    room_id: Uuid,
    message_id: Uuid,
    now_ms: i64,
    done: oneshot::Sender<Answer>,
}

pub(super) struct Pushes {
    queued: Mutex<Vec<Push>>,
    /// One pipeline on the wire at a time.
    in_flight: Arc<Semaphore>,
}

impl Default for Pushes {
    fn default() -> Self {
        Self { queued: Mutex::default(), in_flight: Arc::new(Semaphore::new(1)) }
    }
}

/// The names of the moderation keys under a prefix: each room's buffer (a list of message ids)
/// and the index of rooms waiting, scored by when their oldest buffered message came.
pub(super) struct Keys<'a> {
    pub prefix: &'a str,
}

impl Keys<'_> {
    pub(super) fn list(&self, room_id: Uuid) -> String {
        format!("{}mod:buf:{room_id}", self.prefix)
    }

    pub(super) fn index(&self) -> String {
        format!("{}mod:rooms", self.prefix)
    }
}

impl Pushes {
    /// Appends `message_id` to its room's buffer (and marks the room waiting since `now_ms` unless
    /// it already was), with whatever other pushes are queued; answers the buffer's length just
    /// after this push. `conn` is asked for only by the caller that sends a pipeline.
    pub async fn push<F, Fut>(&self, room_id: Uuid, message_id: Uuid, now_ms: i64, keys: Keys<'_>, conn: F) -> Answer
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<ConnectionManager, RedisDown>>,
    {
        let (done, mut answer) = oneshot::channel();
        self.queued.lock().expect("moderation pushes").push(Push { room_id, message_id, now_ms, done });
        loop {
            tokio::select! {
                biased;
                answer = &mut answer => return answer.unwrap_or_else(|_| Err(lost())),
                permit = self.in_flight.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    if self.queued.lock().expect("moderation pushes").is_empty() {
                        // Another caller's pipeline carried this push, and answered it before
                        // giving the permit back.
                        drop(permit);
                        return answer.await.unwrap_or_else(|_| Err(lost()));
                    }
                    // Only the permit's holder takes from the queue, so it is not empty after the
                    // connection either; a caller that gives up while connecting took nothing.
                    let conn = conn().await;
                    let batch = {
                        let mut queued = self.queued.lock().expect("moderation pushes");
                        let n = queued.len().min(MAX_PUSHES);
                        queued.drain(..n).collect::<Vec<_>>()
                    };
                    let pipe = pipeline(&keys, &batch);
                    tokio::spawn(async move {
                        let lengths: Result<Vec<usize>, RedisDown> = match conn {
                            Ok(mut conn) => pipe.query_async(&mut conn).await.map_err(RedisDown::from),
                            Err(e) => Err(e),
                        };
                        answer_all(batch, lengths);
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// One transaction: each push's RPUSH (whose reply is the length after it) and its room's mark.
fn pipeline(keys: &Keys<'_>, batch: &[Push]) -> redis::Pipeline {
    let index = keys.index();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for p in batch {
        pipe.rpush(keys.list(p.room_id), p.message_id.to_string())
            .cmd("ZADD")
            .arg(&index)
            .arg("NX")
            .arg(p.now_ms)
            .arg(p.room_id.to_string())
            .ignore();
    }
    pipe
}

fn answer_all(batch: Vec<Push>, lengths: Result<Vec<usize>, RedisDown>) {
    let lengths = lengths.and_then(|lengths| {
        if lengths.len() == batch.len() {
            Ok(lengths)
        } else {
            Err(RedisDown(format!("{} replies to {} moderation pushes", lengths.len(), batch.len())))
        }
    });
    match lengths {
        Ok(lengths) => {
            for (p, len) in batch.into_iter().zip(lengths) {
                let _ = p.done.send(Ok(len));
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.done.send(Err(e.clone()));
            }
        }
    }
}

/// The pipeline's task ended without answering (it panicked): the push may or may not have
/// landed, and the caller moderates the message on its own.
fn lost() -> RedisDown {
    RedisDown("the moderation push ended without an answer".into())
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeMap,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use redis::AsyncCommands;

    use super::*;

    fn redis_url() -> String {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    async fn connect() -> Result<ConnectionManager, RedisDown> {
        let client = redis::Client::open(redis_url()).map_err(RedisDown::from)?;
        ConnectionManager::new(client).await.map_err(RedisDown::from)
    }

    /// A key prefix of this test's own, so parallel tests never share a buffer.
    fn prefix() -> String {
        format!("mathia-test-{}:", Uuid::new_v4())
    }

    /// Deletes the buffers of `rooms` and the index under `prefix`.
    async fn clean_up(prefix: &str, rooms: &[Uuid]) {
        let keys = Keys { prefix };
        let mut names: Vec<String> = rooms.iter().map(|room| keys.list(*room)).collect();
        names.push(keys.index());
        let _: () = connect().await.unwrap().del(names).await.unwrap();
    }

    #[tokio::test]
    async fn pushes_made_together_share_round_trips_and_each_gets_its_own_length() {
        let (pushes, prefix, pipelines) = (Arc::new(Pushes::default()), prefix(), Arc::new(AtomicUsize::new(0)));
        let rooms = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let mut tasks = Vec::new();
        for i in 0..300 {
            let (pushes, prefix, pipelines) = (pushes.clone(), prefix.clone(), pipelines.clone());
            let (room, message) = (rooms[i % 3], Uuid::new_v4());
            tasks.push(tokio::spawn(async move {
                let conn = || {
                    pipelines.fetch_add(1, Ordering::SeqCst);
                    connect()
                };
                let len = pushes.push(room, message, 1_000 + i as i64, Keys { prefix: &prefix }, conn).await;
                (room, message, len.expect("Redis is up"))
            }));
        }
        let mut answers: BTreeMap<Uuid, Vec<(usize, Uuid)>> = BTreeMap::new();
        for task in tasks {
            let (room, message, len) = task.await.unwrap();
            answers.entry(room).or_default().push((len, message));
        }

        let keys = Keys { prefix: &prefix };
        let mut redis = connect().await.unwrap();
        for room in rooms {
            let mut answered = answers.remove(&room).unwrap();
            answered.sort();
            // Each push's answer is its own place in the buffer: 1, 2, … 100, each once.
            let lengths: Vec<usize> = answered.iter().map(|(len, _)| *len).collect();
            assert_eq!(lengths, (1..=100).collect::<Vec<_>>());
            let stored: Vec<String> = redis.lrange(keys.list(room), 0, -1).await.unwrap();
            let expected: Vec<String> = answered.iter().map(|(_, id)| id.to_string()).collect();
            assert_eq!(stored, expected, "the buffer holds every message at the place its answer said");
            let since: Option<i64> = redis.zscore(keys.index(), room.to_string()).await.unwrap();
            assert!(since.is_some_and(|ms| (1_000..1_300).contains(&ms)), "the room is marked waiting: {since:?}");
        }
        let sent = pipelines.load(Ordering::SeqCst);
        assert!(sent < 300, "300 pushes at once took {sent} round trips");
        clean_up(&prefix, &rooms).await;
    }

    #[tokio::test]
    async fn redis_down_fails_every_waiting_push_and_the_next_one_goes_out() {
        let (pushes, prefix) = (Arc::new(Pushes::default()), prefix());
        let room = Uuid::new_v4();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (pushes, prefix) = (pushes.clone(), prefix.clone());
            tasks.push(tokio::spawn(async move {
                let down = || async { Err(RedisDown("connection refused".into())) };
                pushes.push(room, Uuid::new_v4(), 1, Keys { prefix: &prefix }, down).await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_err(), "a push while Redis is down fails");
        }
        // Nothing is left holding the permit or the queue.
        let len = pushes.push(room, Uuid::new_v4(), 2, Keys { prefix: &prefix }, connect).await.unwrap();
        assert_eq!(len, 1, "only the push made once Redis is back is in the buffer");
        clean_up(&prefix, &[room]).await;
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_strands_no_one() {
        let (pushes, prefix) = (Arc::new(Pushes::default()), prefix());
        let room = Uuid::new_v4();
        let mut tasks = Vec::new();
        for i in 0..100 {
            let (pushes, prefix) = (pushes.clone(), prefix.clone());
            tasks.push(tokio::spawn(async move {
                let slow = || async {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    connect().await
                };
                pushes.push(room, Uuid::new_v4(), i, Keys { prefix: &prefix }, slow).await
            }));
        }
        // Every third caller goes away, some of them while their own pipeline is being sent.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut kept = 0;
        for (i, task) in tasks.into_iter().enumerate() {
            if i % 3 == 0 {
                task.abort();
            } else {
                let answered = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
                assert!(answered.expect("answered in time").unwrap().is_ok());
                kept += 1;
            }
        }
        assert_eq!(kept, 66);
        clean_up(&prefix, &[room]).await;
    }
}
