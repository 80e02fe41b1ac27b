//! Mentions: a body names a person as `<@their-user-id>` (the client shows their current display
//! name, so a rename does not break it) and everyone in the room as `@room`. Once a message is
//! stored, the ids that belong to the room's members are stored with it and sent on `message`
//! (`mentions`, `mentions_room`); anyone else is dropped and notified of nothing. `@mathia`, the
//! assistant's trigger, is not a mention.

use std::sync::LazyLock;

use regex::Regex;
use uuid::Uuid;

use crate::{adapters::postgres::attention, app::App, domain::Message};

/// The most people one message may mention; further ones are ignored.
pub const MAX_MENTIONS: usize = 50;

static PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<@([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})>").expect("regex")
});
static ROOM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)(?:^|[^\w@.])@room\b").expect("regex"));

/// Who a body mentions, before checking membership: distinct ids in order, and `@room`.
pub fn parse(body: &str) -> (Vec<Uuid>, bool) {
    let mut ids: Vec<Uuid> = Vec::new();
    for capture in PERSON.captures_iter(body) {
        if let Ok(id) = Uuid::parse_str(&capture[1])
            && !ids.contains(&id)
            && ids.len() < MAX_MENTIONS
        {
            ids.push(id);
        }
    }
    (ids, ROOM.is_match(body))
}

/// Stores the mentions of a just-stored person's message and sets them on it. A failure leaves
/// the message without mentions (it is stored already) and is logged.
pub async fn record(app: &App, message: &mut Message) {
    let (candidates, everyone) = parse(&message.body);
    if candidates.is_empty() && !everyone {
        return;
    }
    match attention::record_mentions(&app.db, message.room_id, message.id, message.seq, &candidates, everyone).await {
        Ok(stored) => {
            message.mentions = stored.users;
            message.mentions_room = stored.everyone;
        }
        Err(e) => tracing::warn!(message_id = %message.id, error = %e, "mentions not stored"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_room_are_found_and_nothing_else() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let (ids, room) = parse(&format!("hi <@{a}> and <@{b}>, again <@{a}> @room"));
        assert_eq!(ids, vec![a, b]);
        assert!(room);
        assert_eq!(parse("@mathia what is up? mail bob@room.io"), (vec![], false));
        assert!(parse("<@not-an-id> @roomy @Room!").1);
        assert!(!parse("@roomy").1);
        let many: String = (0..60).map(|_| format!("<@{}> ", Uuid::new_v4())).collect();
        assert_eq!(parse(&many).0.len(), MAX_MENTIONS);
    }
}
