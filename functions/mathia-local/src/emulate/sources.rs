//! The event sources Lambda runs for the workers: an SQS event source mapping per queue (poll,
//! invoke with a real SQS batch event, delete what succeeded, leave `batchItemFailures` to come
//! back after the visibility timeout and, past `maxReceiveCount`, to the queue's DLQ), and the
//! EventBridge schedule that invokes `scheduler`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use axum::body::Bytes;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use super::{Emulator, runtime::InvokeError};

/// One queue's mapping.
pub struct Mapping {
    pub function: &'static str,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    /// Batches in flight at once (Lambda scales its pollers with the backlog).
    pub concurrency: usize,
}

pub fn spawn_mappings(
    emu: Arc<Emulator>,
    sqs: aws_sdk_sqs::Client,
    mappings: Vec<Mapping>,
    shutdown: watch::Receiver<bool>,
) {
    for mapping in mappings {
        let (emu, sqs, mut shutdown) = (emu.clone(), sqs.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mapping = Arc::new(mapping);
            let in_flight = Arc::new(Semaphore::new(mapping.concurrency));
            loop {
                let permit = tokio::select! {
                    p = in_flight.clone().acquire_owned() => p.expect("never closed"),
                    _ = shutdown.changed() => return,
                };
                let received = tokio::select! {
                    r = sqs
                        .receive_message()
                        .queue_url(&mapping.queue_url)
                        .max_number_of_messages(mapping.batch_size.clamp(1, 10))
                        .wait_time_seconds(1)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .message_attribute_names("All")
                        .send() => r,
                    _ = shutdown.changed() => return,
                };
                let messages = match received {
                    Ok(out) => out.messages.unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(function = mapping.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "cannot poll the queue");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if messages.is_empty() {
                    continue;
                }
                let (emu, sqs, mapping) = (emu.clone(), sqs.clone(), mapping.clone());
                tokio::spawn(async move {
                    deliver(&emu, &sqs, &mapping, messages).await;
                    drop(permit);
                });
            }
        });
    }
}

fn record(message: &Message, mapping: &Mapping, region: &str) -> Value {
    let attributes: HashMap<String, String> = message
        .attributes
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
        .unwrap_or_default();
    json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body.as_deref().unwrap_or(""),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body.as_deref().unwrap_or(""),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": region,
    })
}

/// Invokes the function with one batch and deletes what it handled.
async fn deliver(emu: &Emulator, sqs: &aws_sdk_sqs::Client, mapping: &Mapping, messages: Vec<Message>) {
    let event = json!({ "Records": messages.iter().map(|m| record(m, mapping, &emu.region)).collect::<Vec<_>>() });
    let handled: Vec<&Message> = match emu.invoke(mapping.function, &event).await {
        Ok(answer) => {
            let failures: Option<Vec<String>> =
                serde_json::from_slice::<Value>(&answer).ok().and_then(|v| match v.get("batchItemFailures") {
                    None | Some(Value::Null) => Some(Vec::new()),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|i| i.get("itemIdentifier").and_then(Value::as_str).map(str::to_owned))
                        .collect(),
                    Some(_) => None,
                });
            match failures {
                // A response naming an id that is not in the batch fails the whole batch.
                Some(failed)
                    if failed.iter().all(|id| messages.iter().any(|m| m.message_id.as_deref() == Some(id))) =>
                {
                    messages.iter().filter(|m| !failed.iter().any(|f| m.message_id.as_deref() == Some(f))).collect()
                }
                _ => Vec::new(),
            }
        }
        // A failed invocation returns the whole batch to the queue.
        Err(_) => Vec::new(),
    };
    for chunk in handled.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.as_deref()?)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = sqs.delete_message_batch().queue_url(&mapping.queue_url).set_entries(Some(entries)).send().await
        {
            tracing::warn!(function = mapping.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "cannot delete handled messages");
        }
    }
}

/// EventBridge's `rate(…)` rule invoking `scheduler`.
pub fn spawn_schedule(emu: Arc<Emulator>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            let _ = fire_schedule(&emu).await;
        }
    });
}

/// One invocation of `scheduler` with the event the rule sends (also `POST /_emulator/schedule`,
/// so a test or an operator need not wait for the rate).
pub async fn fire_schedule(emu: &Emulator) -> Result<Bytes, InvokeError> {
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": emu.region,
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/mathia-scheduler"],
        "detail": {},
    });
    emu.invoke("scheduler", &event).await
}
