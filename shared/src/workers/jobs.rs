//! The handlers of each queue's jobs: the edge between a queue and the feature that does the work.

use super::JobError;
use crate::{
    app::App,
    jobs::{AiJob, ModerationJob, ReminderJob},
};

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = %job.room_id))]
pub async fn handle_ai(app: &App, job: AiJob) -> Result<(), JobError> {
    Ok(crate::ai::worker::handle(app, job, crate::wiring::connectors(), crate::wiring::tool_sources()).await?)
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = ?job.room_id, n = job.message_ids.len()))]
pub async fn handle_moderation(app: &App, job: ModerationJob) -> Result<(), JobError> {
    Ok(crate::moderation::handle(app, job).await?)
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, reminder_id = %job.reminder_id))]
pub async fn handle_reminder(app: &App, job: ReminderJob) -> Result<(), JobError> {
    Ok(crate::reminders::deliver(app, job).await?)
}
