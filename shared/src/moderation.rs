//! Rooms moderate themselves. Every stored message id goes into its room's buffer in Redis; a
//! batch is taken atomically when the buffer is full, or by the scheduler when its oldest entry
//! has waited `FLUSH_AFTER`, and goes to the `moderation` queue. The scheduler gathers quiet
//! rooms' buffers into batches of about a full buffer's size, so a workspace of many quiet rooms
//! costs a job per batch, not one per message. The worker classifies each message (`rustrict`
//! always, the model too when one is configured), records one flag per offending message and
//! classifier, and mutes someone whose strikes in that message's room reach `STRIKES_TO_MUTE`
//! within `STRIKE_WINDOW` — for a period that doubles with each mute. Without Redis, messages
//! are queued for moderation one by one: nothing is lost; nor when the queue refuses a batch,
//! which goes back to its buffers for the next tick. An edited message is buffered again
//! (the worker reads the body as it is then); a deleted one is judged at delete time, with the
//! body it had, since its batch will no longer find it.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rustrict::{Censor, Type};
use uuid::Uuid;

use crate::{
    adapters::postgres::{messages, moderation, users},
    app::App,
    jobs::{ModerationJob, enqueue},
    ports::{ChatMessage, QueueName},
    protocol::{ModerationAction, ServerEvent},
    realtime::{post_system_message, push_to_room},
};

/// A quiet room's buffer is flushed once its oldest message has waited this long.
pub const FLUSH_AFTER: chrono::Duration = chrono::Duration::seconds(3);
pub const STRIKES_TO_MUTE: i64 = 3;
pub const STRIKE_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// The first mute; each later one in the same room doubles, up to a day.
pub const FIRST_MUTE: chrono::Duration = chrono::Duration::minutes(10);
const LONGEST_MUTE: chrono::Duration = chrono::Duration::hours(24);

/// Queues one batch: of one room's messages, or of several rooms' (`parts`, each a room and its
/// ids). A batch the queue refuses goes back to its rooms' buffers, for the scheduler's next
/// tick, so nothing taken from Redis is left unmoderated. False when there was nothing to queue
/// or it went back.
async fn send_batch(app: &App, parts: Vec<(Uuid, Vec<Uuid>)>) -> bool {
    let message_ids: Vec<Uuid> = parts.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
    if message_ids.is_empty() {
        return false;
    }
    let room = match parts.as_slice() {
        [(room, _)] => Some(*room),
        _ => None,
    };
    let job = ModerationJob { job_id: Uuid::new_v4(), room_id: room, message_ids };
    let Err(e) = enqueue(app, QueueName::Moderation, &job, Duration::ZERO).await else { return true };
    tracing::error!(room_id = ?room, error = %e, "cannot queue a moderation batch; its messages go back to their buffers");
    // Stale at once, so the scheduler's next tick tries again.
    let since_ms = (app.clock.now() - FLUSH_AFTER).timestamp_millis();
    for (room_id, ids) in parts {
        if let Err(e) = app.redis.return_to_moderation(room_id, &ids, since_ms).await {
            tracing::error!(%room_id, error = %e, messages = ids.len(), "moderation batch lost: neither queued nor put back");
        }
    }
    false
}

/// The after-store step: every stored message goes into its room's moderation buffer.
pub struct Buffer;

#[async_trait::async_trait]
impl crate::app::AfterStore for Buffer {
    fn name(&self) -> &'static str {
        "moderation buffer"
    }

    async fn run(&self, app: &App, message: &crate::domain::Message) -> crate::Result<()> {
        buffer(app, message.room_id, message.id).await;
        Ok(())
    }

    /// An edit is judged again, as it now reads: the worker reads the current body.
    async fn after_edit(&self, app: &App, message: &crate::domain::Message) -> crate::Result<()> {
        buffer(app, message.room_id, message.id).await;
        Ok(())
    }

    async fn after_delete(&self, app: &App, message: &crate::domain::Message) -> crate::Result<()> {
        moderate_deleted(app, message).await
    }
}

/// A deleted message is judged at once, with the body it had: its batch, read later, no longer
/// finds it (the ciphertext is gone), and deleting must not hide what was said. Only the filter
/// judges it here — the model is asked in batches.
pub async fn moderate_deleted(app: &App, message: &crate::domain::Message) -> crate::Result<()> {
    let (crate::domain::MessageKind::User, Some(author)) = (message.kind, message.author.as_ref()) else {
        return Ok(());
    };
    let Some(finding) = classify(&message.body) else { return Ok(()) };
    record(app, message.room_id, &[(message.id, author.id, finding)], app.clock.now()).await
}

/// Buffers a stored message for moderation (called on the hot path; never fails it).
pub async fn buffer(app: &App, room_id: Uuid, message_id: Uuid) {
    let now_ms = app.clock.now().timestamp_millis();
    let batch = app.config.moderation_batch_size.max(1) as usize;
    match app.redis.buffer_for_moderation(room_id, message_id, now_ms).await {
        Ok(len) if len >= batch => match app.redis.take_moderation_batch(room_id, batch, now_ms).await {
            Ok(ids) => {
                send_batch(app, vec![(room_id, ids)]).await;
            }
            Err(e) => tracing::warn!(error = %e, "moderation batch left for the scheduler"),
        },
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "Redis down: moderating this message on its own");
            send_batch(app, vec![(room_id, vec![message_id])]).await;
        }
    }
}

/// The scheduler's part: the buffers of rooms that went quiet, gathered into batches of at least
/// a full buffer's size (the last one smaller); a room's buffer stays in one batch. Returns the
/// messages queued and the batches they went in (a batch the queue refused is not counted).
pub async fn flush_stale(app: &App) -> (usize, usize) {
    let now = app.clock.now();
    let cutoff = (now - FLUSH_AFTER).timestamp_millis();
    let rooms = match app.redis.stale_moderation_rooms(cutoff).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read moderation buffers");
            return (0, 0);
        }
    };
    let batch = app.config.moderation_batch_size.max(1) as usize;
    let (mut sent, mut batches) = (0, 0);
    let (mut gathered, mut size) = (Vec::new(), 0);
    for room_id in rooms {
        if let Ok(ids) = app.redis.take_moderation_batch(room_id, 0, now.timestamp_millis()).await {
            if ids.is_empty() {
                continue;
            }
            size += ids.len();
            gathered.push((room_id, ids));
            if size >= batch {
                if send_batch(app, std::mem::take(&mut gathered)).await {
                    (sent, batches) = (sent + size, batches + 1);
                }
                size = 0;
            }
        }
    }
    if send_batch(app, gathered).await {
        (sent, batches) = (sent + size, batches + 1);
    }
    (sent, batches)
}

/// An offending message: (message, author, finding).
type Offence = (Uuid, Uuid, Finding);

/// A finding about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub category: &'static str,
    pub severity: &'static str,
    pub source: &'static str,
}

/// What the filter mistakes for profanity, blanked out before it looks: a few ordinary words,
/// and plain numbers, times and dates (it reads digits as letters, so "1795634146" or a
/// timestamp could pass for a word). Mixed spellings like "5h1t" are kept.
static KNOWN_CLEAN: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"(?i)\bshiitake\b|\b\d[\d:.,/-]*\b").expect("regex"));

/// The profanity / abuse filter.
pub fn classify(text: &str) -> Option<Finding> {
    let text = KNOWN_CLEAN.replace_all(text, " ");
    let analysis = Censor::from_str(&text).analyze();
    if !analysis.is(Type::INAPPROPRIATE & Type::MODERATE_OR_HIGHER) {
        return None;
    }
    let category =
        [(Type::OFFENSIVE, "offensive"), (Type::SEXUAL, "sexual"), (Type::MEAN, "abuse"), (Type::PROFANE, "profanity")]
            .into_iter()
            .find(|(t, _)| analysis.is(*t & Type::MODERATE_OR_HIGHER))
            .map(|(_, c)| c)
            .unwrap_or("inappropriate");
    let severity = if analysis.is(Type::INAPPROPRIATE & Type::SEVERE) { "severe" } else { "moderate" };
    Some(Finding { category, severity, source: "rustrict" })
}

/// The model's opinion on a batch, when a model is configured (best effort: a reply that is not
/// the JSON asked for counts as no findings).
async fn classify_with_model(app: &App, batch: &[messages::ToModerate]) -> Vec<(Uuid, Finding)> {
    if !app.ai.is_model() || batch.is_empty() {
        return Vec::new();
    }
    let listing: String =
        batch.iter().enumerate().map(|(i, m)| format!("{i}: {}\n", m.body.replace('\n', " "))).collect();
    let prompt = vec![
        ChatMessage::new(
            "system",
            "You are a chat moderation classifier. For the numbered messages, answer only JSON: \
             {\"flags\": [{\"index\": <n>, \"category\": \"harassment|hate|threat|sexual|spam\", \"severity\": \"moderate|severe\"}]} \
             listing only messages that clearly break a workplace chat's rules. Answer {\"flags\": []} when none do.",
        ),
        ChatMessage::new("user", listing),
    ];
    let Ok(mut stream) = app.ai.stream(prompt).await else { return Vec::new() };
    let mut answer = String::new();
    while let Some(Ok(delta)) = stream.next().await {
        answer.push_str(&delta);
    }
    let json = answer.find('{').and_then(|start| answer.rfind('}').map(|end| &answer[start..=end]));
    let Some(parsed) = json.and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()) else { return Vec::new() };
    parsed["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let message = batch.get(f["index"].as_u64()? as usize)?;
            let severity = if f["severity"] == "severe" { "severe" } else { "moderate" };
            let category = match f["category"].as_str()? {
                "harassment" => "harassment",
                "hate" => "hate",
                "threat" => "threat",
                "sexual" => "sexual",
                "spam" => "spam",
                _ => "inappropriate",
            };
            Some((message.id, Finding { category, severity, source: "model" }))
        })
        .collect()
}

fn mute_length(past_mutes: i64) -> chrono::Duration {
    let factor = 1i32 << past_mutes.clamp(0, 10);
    (FIRST_MUTE * factor).min(LONGEST_MUTE)
}

/// The `moderation` queue's handler. Idempotent: flags are unique per message and classifier,
/// and strikes count only flags since the person's last mute. Each message is judged in its own
/// room: strikes and mutes are per room.
#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = ?job.room_id, n = job.message_ids.len()))]
pub async fn handle(app: &App, job: ModerationJob) -> crate::Result<()> {
    let now = app.clock.now();
    let batch = messages::to_moderate(&app.db, &app.keyring, job.room_id, &job.message_ids).await?;
    let mut findings: Vec<(Uuid, Finding)> =
        batch.iter().filter_map(|m| classify(&m.body).map(|f| (m.id, f))).collect();
    findings.extend(classify_with_model(app, &batch).await);
    let mut by_room: BTreeMap<Uuid, Vec<Offence>> = BTreeMap::new();
    for (id, finding) in findings {
        if let Some(m) = batch.iter().find(|m| m.id == id) {
            by_room.entry(m.room_id).or_default().push((id, m.author_id, finding));
        }
    }
    for (room_id, findings) in &by_room {
        record(app, *room_id, findings, now).await?;
    }
    tracing::info!(flagged = by_room.values().map(Vec::len).sum::<usize>(), "batch moderated");
    Ok(())
}

/// Flags each `(message, author, finding)` once per message and classifier — an edited message
/// flagged before stays one strike: strikes count messages, not versions — and mutes whoever
/// reached `STRIKES_TO_MUTE`.
async fn record(app: &App, room_id: Uuid, findings: &[Offence], now: DateTime<Utc>) -> crate::Result<()> {
    let mut offenders = Vec::new();
    for (message_id, author_id, finding) in findings {
        let author_id = *author_id;
        moderation::flag(
            &app.db,
            *message_id,
            room_id,
            author_id,
            finding.category,
            finding.severity,
            finding.source,
            now,
        )
        .await?;
        if !offenders.contains(&author_id) {
            offenders.push(author_id);
        }
    }
    for user_id in offenders {
        let strikes = moderation::strikes(&app.db, room_id, user_id, now - STRIKE_WINDOW).await?;
        if strikes >= STRIKES_TO_MUTE {
            mute(app, room_id, user_id, strikes, now).await?;
        }
    }
    Ok(())
}

async fn mute(app: &App, room_id: Uuid, user_id: Uuid, strikes: i64, now: DateTime<Utc>) -> crate::Result<()> {
    let past = moderation::past_mutes(&app.db, room_id, user_id).await?;
    let until = now + mute_length(past);
    let reason = format!("{strikes} flagged messages");
    let Some(until) = moderation::mute(&app.db, room_id, user_id, until, &reason, now).await? else {
        return Ok(()); // already muted
    };
    let name = users::by_id(&app.db, user_id).await?.map(|u| u.display_name).unwrap_or_default();
    tracing::info!(%user_id, %until, "muted");
    let event = ServerEvent::Moderation { room_id, user_id, action: ModerationAction::Muted, until: Some(until) };
    push_to_room(app, room_id, &event, None).await;
    let body = format!("🔇 {name} is muted until {} UTC after {reason}.", until.format("%H:%M"));
    post_system_message(app, room_id, &body).await
}

/// Tells the room someone may speak again.
pub async fn announce_unmuted(app: &App, room_id: Uuid, user_id: Uuid) {
    let event = ServerEvent::Moderation { room_id, user_id, action: ModerationAction::Unmuted, until: None };
    push_to_room(app, room_id, &event, None).await;
}

/// The scheduler's part: lift mutes that have ended.
pub async fn lift_expired(app: &App) -> usize {
    match moderation::lift_expired(&app.db, app.clock.now()).await {
        Ok(lifted) => {
            for (room_id, user_id) in &lifted {
                announce_unmuted(app, *room_id, *user_id).await;
            }
            lifted.len()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot lift mutes");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_but_clean_phrases_are_not_flagged() {
        for clean in [
            "Scunthorpe United won again",
            "Let's assess the risks before Friday",
            "The class hierarchy needs a refactor",
            "I passed the bass to the bassist",
            "Shiitake mushrooms with cocktail sauce",
            "Please analyse the assets in Essex",
            "We'll hit the deadline, no kidding",
            "The grape harvest in Sussex",
            "Can you push the button and shoot me an email?",
            "Meet at 14:30 on 2026-12-03, ticket 1795634146123, room 5318008",
        ] {
            assert_eq!(classify(clean), None, "{clean:?} is clean");
        }
    }

    #[test]
    fn abuse_is_flagged() {
        for bad in ["you are a fucking idiot", "shut up you stupid bitch", "fuck off"] {
            assert!(classify(bad).is_some(), "{bad:?} is flagged");
        }
    }

    #[test]
    fn mutes_double_and_stop_at_a_day() {
        assert_eq!(mute_length(0), chrono::Duration::minutes(10));
        assert_eq!(mute_length(1), chrono::Duration::minutes(20));
        assert_eq!(mute_length(3), chrono::Duration::minutes(80));
        assert_eq!(mute_length(9), chrono::Duration::hours(24));
    }
}
