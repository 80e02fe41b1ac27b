//! `regenerate`: the person who asked answers their question again. The model is asked anew
//! for the same request, in the same context, and the new answer streams to the room and then
//! replaces the old reply (the same message, rewritten: clients swap it in place, as a chat
//! assistant's "regenerate" does).
//!
//! Rules: only the asker may regenerate (the prompt holds their goals and their notes from
//! other rooms, so nobody else may have it re-run), and only while they may speak (member, not
//! muted); it counts against the per-person message rate limit; only the model's answers
//! (`Chat`, `Summarize`) are regenerated — a connector's reply acted on something (a note, a
//! reminder, a meeting) and re-running it would act twice; one regeneration per reply runs at
//! a time. The new answer is billed like a new reply (its own job id, so its own charge).

use std::time::Duration;

use uuid::Uuid;

use super::{router, strip_mention};
use crate::{
    access,
    adapters::postgres::{ai_jobs, messages},
    app::App,
    domain::{Message, MessageKind},
    error::{Dependency, Error},
    jobs::{AiJob, enqueue},
    limits::rate_limit,
    ports::QueueName,
};

/// Whether a request is answered by the model alone (and so may be asked again).
pub fn regenerable(request: &str) -> bool {
    matches!(router::route(request), router::Intent::Chat | router::Intent::Summarize)
}

/// The live AI reply `reply_id` of the room and the live question it answers.
pub async fn reply_and_question(app: &App, room_id: Uuid, reply_id: Uuid) -> crate::Result<(Message, Message)> {
    let reply = messages::get(&app.db, &app.keyring, room_id, reply_id)
        .await?
        .filter(|m| !m.deleted)
        .ok_or_else(|| Error::not_found("not_found", "no such message in this room"))?;
    if reply.kind != MessageKind::Ai {
        return Err(Error::invalid_field("message_id", "only the assistant's replies can be regenerated"));
    }
    let question = match &reply.reply_to {
        Some(q) => messages::get(&app.db, &app.keyring, room_id, q.id).await?.filter(|m| !m.deleted),
        None => None,
    };
    let question =
        question.ok_or_else(|| Error::invalid_field("message_id", "the question of this reply was deleted"))?;
    Ok((reply, question))
}

#[tracing::instrument(skip(app), fields(%room_id, %reply_id))]
pub async fn request(app: &App, user_id: Uuid, room_id: Uuid, reply_id: Uuid) -> crate::Result<()> {
    access::require_speaker(app, room_id, user_id).await?;
    let (reply, question) = reply_and_question(app, room_id, reply_id).await?;
    let asker = question.author.as_ref().map(|a| a.id);
    if asker != Some(user_id) {
        return Err(Error::forbidden("forbidden", "only the person who asked can regenerate this reply"));
    }
    if !regenerable(&strip_mention(&question.body)) {
        return Err(Error::invalid_field(
            "message_id",
            "only the model's answers can be regenerated; this reply acted on something — ask again instead",
        ));
    }
    rate_limit(app, user_id, app.clock.now()).await?;
    let job_id = Uuid::now_v7();
    if !ai_jobs::queue_regeneration(&app.db, job_id, room_id, question.id, reply.id, app.clock.now()).await? {
        return Err(Error::conflict("regenerating", "this reply is being regenerated already"));
    }
    let job = AiJob { job_id, room_id, message_id: question.id, user_id, regenerates: Some(reply.id) };
    if let Err(e) = enqueue(app, QueueName::Ai, &job, Duration::ZERO).await {
        tracing::error!(error = %e, "cannot queue the regeneration");
        ai_jobs::unqueue(&app.db, job_id).await?;
        return Err(Error::Unavailable(Dependency::Model));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_models_answers_are_regenerable() {
        assert!(regenerable("what should we do this week?"));
        assert!(regenerable("summarize today"));
        assert!(!regenerable("remember that the launch is on Friday"));
        assert!(!regenerable("remind me to stretch in 10 mins"));
        assert!(!regenerable("help"));
    }
}
