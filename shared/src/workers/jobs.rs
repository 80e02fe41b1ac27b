//! The jobs on each queue and their handlers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::JobError;
use crate::{
    app::App,
    ports::{QueueError, QueueName},
};

/// An `@mathia` message to answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AiJob {
    pub job_id: Uuid,
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub user_id: Uuid,
}

/// A batch of a room's messages to moderate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModerationJob {
    pub job_id: Uuid,
    pub room_id: Uuid,
    pub message_ids: Vec<Uuid>,
}

/// A reminder that is due.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReminderJob {
    pub job_id: Uuid,
    pub reminder_id: Uuid,
}

/// Puts a job on its queue.
pub async fn enqueue<T: Serialize>(
    app: &App,
    queue: QueueName,
    job: &T,
    delay: std::time::Duration,
) -> Result<(), QueueError> {
    let body = serde_json::to_string(job).expect("jobs serialise");
    app.queue.send(queue, &body, delay).await
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = %job.room_id))]
pub async fn handle_ai(app: &App, job: AiJob) -> Result<(), JobError> {
    crate::ai::worker::handle(app, job).await
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = %job.room_id, n = job.message_ids.len()))]
pub async fn handle_moderation(app: &App, job: ModerationJob) -> Result<(), JobError> {
    crate::moderation::handle(app, job).await
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, reminder_id = %job.reminder_id))]
pub async fn handle_reminder(app: &App, job: ReminderJob) -> Result<(), JobError> {
    crate::reminders::deliver(app, job).await
}
