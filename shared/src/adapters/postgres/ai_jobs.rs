//! AI jobs: one row per job id, so a redelivered job does nothing twice.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// After this long a `running` job is presumed dead (its worker crashed) and may be taken over.
pub const TAKEOVER_AFTER: Duration = Duration::minutes(5);

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This worker runs the job, with this stream id.
    Mine(Uuid),
    /// Done before, or running elsewhere: nothing to do.
    Taken,
}

pub async fn claim(
    db: &PgPool,
    job_id: Uuid,
    room_id: Uuid,
    trigger: Uuid,
    now: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let stream_id = Uuid::new_v4();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO ai_jobs (job_id, room_id, trigger_message_id, status, stream_id, started_at)
         VALUES ($1, $2, $3, 'running', $4, $5) ON CONFLICT (job_id) DO NOTHING RETURNING stream_id",
    )
    .bind(job_id)
    .bind(room_id)
    .bind(trigger)
    .bind(stream_id)
    .bind(now)
    .fetch_optional(db)
    .await?;
    if let Some(id) = inserted {
        return Ok(Claim::Mine(id));
    }
    // A stale run that never finished, and left no reply, may be taken over.
    let taken: Option<Uuid> = sqlx::query_scalar(
        "UPDATE ai_jobs SET stream_id = $2, started_at = $3
         WHERE job_id = $1 AND status = 'running' AND started_at < $4
           AND NOT EXISTS (SELECT 1 FROM messages WHERE reply_to = ai_jobs.trigger_message_id AND kind = 'ai')
         RETURNING stream_id",
    )
    .bind(job_id)
    .bind(stream_id)
    .bind(now)
    .bind(now - TAKEOVER_AFTER)
    .fetch_optional(db)
    .await?;
    Ok(taken.map(Claim::Mine).unwrap_or(Claim::Taken))
}

/// Gives back a claim whose attempt failed before it finished: the job's retry (the queue
/// redelivers it within seconds) may then take it over at once instead of after
/// `TAKEOVER_AFTER`. Only this attempt's own claim is released, and a job whose reply was
/// stored stays taken (the takeover checks for it).
pub async fn release(db: &PgPool, job_id: Uuid, stream_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ai_jobs SET started_at = '-infinity' WHERE job_id = $1 AND stream_id = $2 AND status = 'running'",
    )
    .bind(job_id)
    .bind(stream_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish(db: &PgPool, job_id: Uuid, reply: Option<Uuid>, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ai_jobs SET status = 'done', reply_message_id = $2, outcome = $3, finished_at = now() WHERE job_id = $1")
        .bind(job_id)
        .bind(reply)
        .bind(outcome)
        .execute(db)
        .await?;
    Ok(())
}
