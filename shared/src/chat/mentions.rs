//! Mentions: a body names a person as `<@their-user-id>` (the client shows their current display
//! name, so a rename does not break it) and everyone in the room as `@room`. Once a message is
//! stored, the ids that belong to the room's members are stored with it and sent on `message`
//! (`mentions`, `mentions_room`); anyone else is dropped and notified of nothing. `@mathia`, the
//! assistant's trigger, is not a mention.

use crate::{adapters::postgres::attention, app::App, domain::Message};

pub use crate::domain::mention::{MAX_MENTIONS, parse};

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
    use uuid::Uuid;

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
