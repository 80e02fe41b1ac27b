//! Mentions in a body: `<@user-id>` for a person (by id, so a rename does not break it) and
//! `@room` for everyone in the room.

use std::sync::LazyLock;

use regex::Regex;
use uuid::Uuid;

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
