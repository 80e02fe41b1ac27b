//! The jobs Mathia puts on its queues, and `enqueue`. Features enqueue and handle these; the
//! workers (the queues' edge) only route them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    app::App,
    ports::{QueueError, QueueName},
};

/// An `@mathia` message to answer (`message_id`, asked by `user_id`), or, with `regenerates`,
/// that AI reply of it to answer again in place.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AiJob {
    pub job_id: Uuid,
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regenerates: Option<Uuid>,
}

/// A batch of messages to moderate: one room's full buffer (`room_id` says which room, and a
/// message of any other room is left out), or the buffers of quiet rooms gathered by the
/// scheduler (`room_id` null: each message is judged in the room it was stored in).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModerationJob {
    pub job_id: Uuid,
    #[serde(default)]
    pub room_id: Option<Uuid>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moderation_job_queued_by_an_older_build_still_reads() {
        let (job_id, room, message) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let old = format!(r#"{{"job_id":"{job_id}","room_id":"{room}","message_ids":["{message}"]}}"#);
        let job: ModerationJob = serde_json::from_str(&old).unwrap();
        assert_eq!(job, ModerationJob { job_id, room_id: Some(room), message_ids: vec![message] });
    }

    #[test]
    fn a_roomless_moderation_job_round_trips() {
        let job = ModerationJob { job_id: Uuid::new_v4(), room_id: None, message_ids: vec![Uuid::new_v4()] };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains(r#""room_id":null"#), "{text}");
        assert_eq!(serde_json::from_str::<ModerationJob>(&text).unwrap(), job);
        let missing = text.replace(r#""room_id":null,"#, "");
        assert_eq!(serde_json::from_str::<ModerationJob>(&missing).unwrap(), job, "{missing}");
    }
}
