//! Queue consumers. Each job type has a handler over the `App`; `run_sqs_batch` drives them from
//! a Lambda SQS event and reports per-message failures, and `mathia-local` drives the very same
//! `handle` from its in-process queues or from SQS. Handlers are idempotent per job id: queues
//! redeliver.

pub mod jobs;
pub mod scheduler;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::Instrument;

pub use crate::jobs::{AiJob, ModerationJob, ReminderJob};
use crate::{app::App, error::Error, ports::QueueName};

/// How a job ended, for its queue.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job can never succeed (not a job of this queue, or what it names is gone); it goes
    /// to the dead-letter queue.
    #[error("{0}")]
    Final(String),
    /// A dependency failed; try again later.
    #[error("{0}")]
    Retry(String),
}

/// The queue edge's translation of a feature's error: worth a retry, or final.
impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        e.log();
        if e.is_transient() { Self::Retry(e.to_string()) } else { Self::Final(e.to_string()) }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, JobError> {
    serde_json::from_str(body).map_err(|e| JobError::Final(format!("malformed job: {e}")))
}

/// At most this many jobs of one SQS batch run at once.
pub const BATCH_CONCURRENCY: usize = 10;

/// Handles one message of a queue.
pub async fn handle(app: &App, queue: QueueName, body: &str) -> Result<(), JobError> {
    match queue {
        QueueName::Ai => jobs::handle_ai(app, parse(body)?).await,
        QueueName::Moderation => jobs::handle_moderation(app, parse(body)?).await,
        QueueName::Reminders => jobs::handle_reminder(app, parse(body)?).await,
    }
}

/// The generic SQS batch helper every worker function uses: one span per message, failures
/// reported individually so SQS retries only those (and redrives them to the DLQ).
pub async fn run_sqs_batch(app: &App, queue: QueueName, event: SqsEvent) -> SqsBatchResponse {
    use futures::StreamExt;
    // A batch's jobs run side by side (a streamed reply must not wait behind another), at most
    // `BATCH_CONCURRENCY` at once; each still succeeds or fails on its own.
    let failures: Vec<BatchItemFailure> = futures::stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("job", queue = queue.as_str(), message_id = %id);
            let body = record.body.as_deref().unwrap_or("");
            let result = handle(app, queue, body).instrument(span.clone()).await;
            result.err().map(|e| {
                span.in_scope(|| tracing::warn!(error = %e, "job failed"));
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
