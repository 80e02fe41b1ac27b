//! AI jobs: one row per job id, so a redelivered job does nothing twice. A regeneration's row
//! is written `queued` when it is asked for, so that a reply has at most one regeneration
//! queued or running (a partial unique index on `regenerates`).

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

/// Records a regeneration of `reply` before its job is queued. False when one is already
/// queued or running for that reply (one left over for longer than [`TAKEOVER_AFTER`] is
/// given up first).
pub async fn queue_regeneration(
    db: &PgPool,
    job_id: Uuid,
    room_id: Uuid,
    trigger: Uuid,
    reply: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE ai_jobs SET status = 'done', outcome = 'abandoned', finished_at = now()
         WHERE regenerates = $1 AND status <> 'done' AND started_at < $2",
    )
    .bind(reply)
    .bind(now - TAKEOVER_AFTER)
    .execute(db)
    .await?;
    let queued = sqlx::query(
        "INSERT INTO ai_jobs (job_id, room_id, trigger_message_id, status, stream_id, started_at, regenerates)
         VALUES ($1, $2, $3, 'queued', $1, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(job_id)
    .bind(room_id)
    .bind(trigger)
    .bind(now)
    .bind(reply)
    .execute(db)
    .await?
    .rows_affected();
    Ok(queued == 1)
}

/// Forgets a regeneration whose job could not be queued.
pub async fn unqueue(db: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ai_jobs WHERE job_id = $1 AND status = 'queued'").bind(job_id).execute(db).await?;
    Ok(())
}

pub async fn claim(
    db: &PgPool,
    job_id: Uuid,
    room_id: Uuid,
    trigger: Uuid,
    regenerates: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let stream_id = Uuid::new_v4();
    // A regeneration that was queued by its request.
    let started: Option<Uuid> = sqlx::query_scalar(
        "UPDATE ai_jobs SET status = 'running', stream_id = $2, started_at = $3
         WHERE job_id = $1 AND status = 'queued' RETURNING stream_id",
    )
    .bind(job_id)
    .bind(stream_id)
    .bind(now)
    .fetch_optional(db)
    .await?;
    if let Some(id) = started {
        return Ok(Claim::Mine(id));
    }
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO ai_jobs (job_id, room_id, trigger_message_id, status, stream_id, started_at, regenerates)
         VALUES ($1, $2, $3, 'running', $4, $5, $6) ON CONFLICT (job_id) DO NOTHING RETURNING stream_id",
    )
    .bind(job_id)
    .bind(room_id)
    .bind(trigger)
    .bind(stream_id)
    .bind(now)
    .bind(regenerates)
    .fetch_optional(db)
    .await?;
    if let Some(id) = inserted {
        return Ok(Claim::Mine(id));
    }
    // A stale run that never finished, and left no reply (a regeneration always has one),
    // may be taken over.
    let taken: Option<Uuid> = sqlx::query_scalar(
        "UPDATE ai_jobs SET stream_id = $2, started_at = $3
         WHERE job_id = $1 AND status = 'running' AND started_at < $4
           AND (regenerates IS NOT NULL
                OR NOT EXISTS (SELECT 1 FROM messages WHERE reply_to = ai_jobs.trigger_message_id AND kind = 'ai'))
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

/// A tool call's stored outcome, when this job made it before (see migration 0016).
pub async fn tool_outcome(
    db: &PgPool,
    keyring: &crate::keyring::RoomKeyring,
    room_id: Uuid,
    job_id: Uuid,
    call_key: &str,
) -> Result<Option<Vec<u8>>, crate::error::Error> {
    let row: Option<(i32, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT key_version, nonce, ciphertext FROM ai_tool_calls WHERE job_id = $1 AND call_key = $2 AND room_id = $3",
    )
    .bind(job_id)
    .bind(call_key)
    .bind(room_id)
    .fetch_optional(db)
    .await?;
    let Some((key_version, nonce, ciphertext)) = row else { return Ok(None) };
    let sealed = crate::keyring::Sealed { key_version, nonce, ciphertext };
    Ok(Some(keyring.open(room_id, tool_aad(job_id, call_key), &sealed).await?))
}

/// Keeps a tool call's outcome (the first one kept wins).
pub async fn keep_tool_outcome(
    db: &PgPool,
    keyring: &crate::keyring::RoomKeyring,
    room_id: Uuid,
    job_id: Uuid,
    call_key: &str,
    outcome: &[u8],
) -> Result<(), crate::error::Error> {
    let sealed = keyring.seal(room_id, tool_aad(job_id, call_key), outcome).await?;
    sqlx::query(
        "INSERT INTO ai_tool_calls (job_id, call_key, room_id, key_version, nonce, ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(job_id)
    .bind(call_key)
    .bind(room_id)
    .bind(sealed.key_version)
    .bind(sealed.nonce)
    .bind(sealed.ciphertext)
    .execute(db)
    .await?;
    Ok(())
}

fn tool_aad(job_id: Uuid, call_key: &str) -> crate::keyring::Aad<'_> {
    crate::keyring::Aad { kind: call_key, id: job_id }
}

/// Forgets the tool outcomes kept before `before`: a job is not delivered again that late.
pub async fn forget_tool_outcomes(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM ai_tool_calls WHERE created_at < $1").bind(before).execute(db).await?.rows_affected())
}
