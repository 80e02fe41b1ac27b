//! Queues on SQS: send (with a delay of up to 900 s), and — for `mathia-local` in the emulated
//! mode — long-poll receive and batch delete, so the same worker handlers consume real queues.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_sqs::{Client, types::DeleteMessageBatchRequestEntry};

use crate::ports::{MAX_QUEUE_DELAY, Queue, QueueError, QueueName};

pub struct SqsQueue {
    client: Client,
    urls: HashMap<QueueName, String>,
}

/// A received message, with what a consumer needs to delete it.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

fn err(e: impl std::fmt::Display) -> QueueError {
    QueueError(e.to_string())
}

impl SqsQueue {
    pub fn new(client: Client, urls: HashMap<QueueName, String>) -> Self {
        Self { client, urls }
    }

    /// Resolves each queue's URL: the configured one, or the queue named `<prefix><name>`.
    pub async fn resolve(
        client: Client,
        configured: &HashMap<QueueName, String>,
        prefix: &str,
    ) -> Result<Self, QueueError> {
        let mut urls = HashMap::new();
        for name in QueueName::ALL {
            let url = match configured.get(&name) {
                Some(url) => url.clone(),
                None => client
                    .get_queue_url()
                    .queue_name(format!("{prefix}{}", name.as_str()))
                    .send()
                    .await
                    .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?
                    .queue_url
                    .ok_or_else(|| err("no queue url"))?,
            };
            urls.insert(name, url);
        }
        Ok(Self::new(client, urls))
    }

    pub fn url(&self, queue: QueueName) -> &str {
        &self.urls[&queue]
    }

    pub async fn receive(
        &self,
        queue: QueueName,
        max: i32,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let wait = wait.min(Duration::from_secs(20));
        let request = self
            .client
            .receive_message()
            .queue_url(self.url(queue))
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount);
        // A long poll is answered after up to `wait`: its attempts get that on top.
        let out = match self.client.config().timeout_config().and_then(|t| t.operation_attempt_timeout()) {
            Some(attempt) => {
                let timeouts = aws_sdk_sqs::config::Builder::default().timeout_config(super::timeouts(attempt + wait));
                request.customize().config_override(timeouts).send().await
            }
            None => request.send().await,
        }
        .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage {
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes handled messages; the others return after their visibility timeout.
    pub async fn delete(&self, queue: QueueName, handled: &[ReceivedMessage]) -> Result<(), QueueError> {
        for chunk in handled.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .map_err(err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_message_batch()
                .queue_url(self.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(self.url(queue))
            .message_body(body)
            .delay_seconds(delay.min(MAX_QUEUE_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
