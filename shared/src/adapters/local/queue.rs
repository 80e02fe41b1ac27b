//! The in-process `Queue`: one channel per queue name, delays by timer. `mathia-local` drains
//! the receivers with the same worker handlers the Lambda functions run on SQS batches.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ports::{MAX_QUEUE_DELAY, Queue, QueueError, QueueName};

/// A job as a consumer receives it: like an SQS message, it has an id and a receive count.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

pub type LocalQueueReceivers = HashMap<QueueName, mpsc::UnboundedReceiver<QueuedJob>>;

#[derive(Clone)]
pub struct LocalQueue {
    senders: HashMap<QueueName, mpsc::UnboundedSender<QueuedJob>>,
}

impl LocalQueue {
    pub fn new() -> (Self, LocalQueueReceivers) {
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for name in QueueName::ALL {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(name, tx);
            receivers.insert(name, rx);
        }
        (Self { senders }, receivers)
    }

    /// A queue nobody consumes: sends fail with a clear error.
    pub fn detached() -> Self {
        Self::new().0
    }

    /// Puts a job back after a failed attempt, as SQS does after the visibility timeout.
    pub fn redeliver(&self, queue: QueueName, mut job: QueuedJob, after: Duration) {
        job.receive_count += 1;
        let tx = self.senders[&queue].clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(job);
        });
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> Result<(), QueueError> {
        let tx = self.senders[&queue].clone();
        if tx.is_closed() {
            return Err(QueueError(format!("no consumer for the {} queue", queue.as_str())));
        }
        let job = QueuedJob { message_id: uuid::Uuid::new_v4().to_string(), body: body.to_owned(), receive_count: 1 };
        let delay = delay.min(MAX_QUEUE_DELAY);
        if delay.is_zero() {
            tx.send(job).map_err(|_| QueueError("queue closed".into()))
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(job);
            });
            Ok(())
        }
    }
}
