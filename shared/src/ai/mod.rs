//! The assistant. A message that mentions `@mathia` becomes an `ai` job (its id is the
//! message's, so a resend never asks twice). The worker routes the request to a connector
//! (`router`, `connectors`), builds the prompt (`context`), streams the reply to the room in
//! coalesced chunks (`worker`), stores it and bills the workspace once.

pub mod agent;
pub mod catch_up;
pub mod connectors;
pub mod context;
pub mod models;
pub mod regenerate;
pub mod router;
pub mod tools;
pub mod worker;

use std::{sync::LazyLock, time::Duration};

use regex::Regex;
use uuid::Uuid;

use crate::{
    app::App,
    error::{Dependency, Error},
    jobs::{AiJob, enqueue},
    ports::QueueName,
};

static MENTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)(^|[^\w@])@mathia\b").expect("regex"));

/// Whether a message asks the assistant.
pub fn mentions_mathia(body: &str) -> bool {
    MENTION.is_match(body)
}

/// The request without the mention.
pub fn strip_mention(body: &str) -> String {
    let text = MENTION.replace_all(body, "$1");
    text.trim().trim_start_matches([',', ':']).trim().to_owned()
}

/// The after-store step: a message that mentions `@mathia` asks the assistant.
pub struct Ask;

#[async_trait::async_trait]
impl crate::app::AfterStore for Ask {
    fn name(&self) -> &'static str {
        "assistant request"
    }

    async fn run(&self, app: &App, message: &crate::domain::Message) -> crate::Result<()> {
        match &message.author {
            Some(author) if mentions_mathia(&message.body) => {
                request_reply(app, message.room_id, message.id, author.id).await
            }
            _ => Ok(()),
        }
    }
}

/// Queues the assistant's reply to a message.
pub async fn request_reply(app: &App, room_id: Uuid, message_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    let job = AiJob { job_id: message_id, room_id, message_id, user_id, regenerates: None };
    enqueue(app, QueueName::Ai, &job, Duration::ZERO).await.map_err(|e| {
        tracing::error!(error = %e, "cannot queue the AI job");
        Error::Unavailable(Dependency::Model)
    })
}

/// `stop_ai` from a member of the room: asks the stream to end (it may be running in another
/// process).
pub async fn request_stop(app: &App, room_id: Uuid, stream_id: &str) -> crate::Result<()> {
    if app.redis.stream_room(stream_id).await? != Some(room_id) {
        return Err(Error::not_found("not_found", "no such stream in this room"));
    }
    Ok(app.redis.request_stop(stream_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_words() {
        assert!(mentions_mathia("@mathia hi"));
        assert!(mentions_mathia("hey @Mathia, what's up"));
        assert!(!mentions_mathia("email me at bob@mathia.io"));
        assert!(!mentions_mathia("@mathias is a person"));
        assert_eq!(strip_mention("@mathia, remind me to stretch"), "remind me to stretch");
        assert_eq!(strip_mention("hey @mathia what time"), "hey  what time");
    }
}
