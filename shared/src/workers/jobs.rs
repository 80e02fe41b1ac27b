//! The handlers of each queue's jobs: the edge between a queue and the feature that does the work.

use crate::{
    app::App,
    jobs::{AiJob, JobError, ModerationJob, ReminderJob},
};

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
