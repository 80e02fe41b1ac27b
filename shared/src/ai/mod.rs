//! The assistant. A message that mentions `@mathia` becomes an `ai` job (its id is the
//! message's, so a resend never asks twice). The worker routes the request to a connector
//! (`router`, `connectors`), builds the prompt (`context`), streams the reply to the room in
//! coalesced chunks (`worker`), stores it and bills the workspace once.

pub mod connectors;
pub mod context;
pub mod router;
pub mod worker;

use std::{sync::LazyLock, time::Duration};

use regex::Regex;
use uuid::Uuid;

use crate::{
    app::App,
    jobs::{AiJob, enqueue},
    ports::QueueName,
    protocol::{WsError, WsErrorCode},
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

/// Queues the assistant's reply to a message.
pub async fn request_reply(app: &App, room_id: Uuid, message_id: Uuid, user_id: Uuid) -> Result<(), WsError> {
    let job = AiJob { job_id: message_id, room_id, message_id, user_id };
    enqueue(app, QueueName::Ai, &job, Duration::ZERO).await.map_err(|e| {
        tracing::error!(error = %e, "cannot queue the AI job");
        WsError::unavailable("the assistant")
    })
}

/// `stop_ai`: asks the stream to end (it may be running in another process).
pub async fn request_stop(app: &App, room_id: Uuid, stream_id: &str) -> Result<(), WsError> {
    let room = app.redis.stream_room(stream_id).await.map_err(|_| WsError::unavailable("stopping"))?;
    if room != Some(room_id) {
        return Err(WsError::new(WsErrorCode::NotFound, "no such stream in this room"));
    }
    app.redis.request_stop(stream_id).await.map_err(|_| WsError::unavailable("stopping"))
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
