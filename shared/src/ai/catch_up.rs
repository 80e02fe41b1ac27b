//! "Catch me up": a private summary, for one person, of what arrived in a room since their read
//! marker. The assistant is asked with the summary connector's "since seq" variant
//! ([`Summary::since_instruction`]) and given only the unread messages; with no model (or when
//! it fails) the answer is a short digest written here. Either way it is free, like the other
//! connector replies, goes only to the asker (nothing is posted to the room), and leaves the
//! marker where it was: reading is still theirs to do.

use std::collections::HashMap;

use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::connectors::Summary;
use crate::{
    access,
    adapters::postgres::{
        attention,
        messages::{self, Cursor},
        rooms,
    },
    app::App,
    domain::{Message, MessageKind},
    error::Error,
    ports::ChatMessage,
};

/// The most unread messages a catch-up reads (the oldest ones, from the marker on).
pub const MAX_MESSAGES: i64 = 200;
/// The prompt's budget for the messages, in characters.
const MAX_TRANSCRIPT_CHARS: usize = 12_000;
/// How many lines the digest quotes.
const DIGEST_LINES: usize = 8;

/// What `POST /api/rooms/{id}/catch-up` answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CatchUp {
    pub room_id: Uuid,
    /// The person's marker: only messages after it were read for this.
    pub since_seq: i64,
    /// The last message summarised (`since_seq` when there was nothing).
    pub until_seq: i64,
    pub message_count: usize,
    /// `model`, `digest`, or `none` (nothing unread).
    pub source: &'static str,
    /// Markdown.
    pub summary: String,
}

pub async fn catch_up(app: &App, user_id: Uuid, display_name: &str, room_id: Uuid) -> crate::Result<CatchUp> {
    let room = access::member_room(app, room_id, user_id).await?;
    crate::limits::rate_limit(app, user_id, app.clock.now()).await?;
    let standing = attention::standing(&app.db, user_id, room_id).await?.ok_or_else(Error::not_member)?;
    let since = standing.last_read_seq;
    let page = messages::page(&app.db, &app.keyring, room_id, Cursor::After(since), MAX_MESSAGES).await?;
    let unread: Vec<Message> =
        page.messages.into_iter().filter(|m| !m.deleted && m.author.as_ref().is_none_or(|a| a.id != user_id)).collect();
    let until = unread.last().map_or(since, |m| m.seq);
    let answer = |source, summary| CatchUp {
        room_id,
        since_seq: since,
        until_seq: until,
        message_count: unread.len(),
        source,
        summary,
    };
    if unread.is_empty() {
        return Ok(answer("none", "You're all caught up: nothing new here since you last read.".to_owned()));
    }
    let names: HashMap<Uuid, String> =
        rooms::members(&app.db, room_id).await?.into_iter().map(|a| (a.id, a.display_name)).collect();
    let lines: Vec<(String, String)> = unread.iter().map(|m| (speaker(m), readable(&m.body, &names))).collect();
    if app.ai.is_model() {
        match ask_model(app, display_name, &room.name, &lines).await {
            Some(summary) => return Ok(answer("model", summary)),
            None => tracing::warn!(%room_id, "catch-up: the model did not answer; a digest instead"),
        }
    }
    let mentioned: Vec<bool> = unread.iter().map(|m| m.mentions_room || m.mentions.contains(&user_id)).collect();
    Ok(answer("digest", digest(&lines, &mentioned)))
}

fn speaker(m: &Message) -> String {
    match (m.kind, &m.author) {
        (MessageKind::Ai, _) => "Mathia".to_owned(),
        (_, Some(a)) => a.display_name.clone(),
        (_, None) => "Mathia (system)".to_owned(),
    }
}

/// A body with its `<@id>` mentions turned into `@Name`.
fn readable(body: &str, names: &HashMap<Uuid, String>) -> String {
    let mut out = body.to_owned();
    for id in crate::domain::mention::parse(body).0 {
        let name = names.get(&id).map_or("someone", String::as_str);
        out = out.replace(&format!("<@{id}>"), &format!("@{name}"));
    }
    out
}

/// The newest lines that fit the budget, then the model's whole answer (or `None`).
async fn ask_model(app: &App, reader: &str, room: &str, lines: &[(String, String)]) -> Option<String> {
    let mut transcript: Vec<String> = Vec::new();
    let mut used = 0;
    for (who, body) in lines.iter().rev() {
        let line = format!("{who}: {body}");
        if used + line.len() > MAX_TRANSCRIPT_CHARS {
            break;
        }
        used += line.len();
        transcript.push(line);
    }
    transcript.reverse();
    let prompt = vec![
        ChatMessage::new("system", Summary::since_instruction(reader, room, lines.len())),
        ChatMessage::new("user", transcript.join("\n")),
    ];
    let collect = async {
        let mut deltas = app.ai.stream(prompt).await.ok()?;
        let mut text = String::new();
        while let Some(delta) = deltas.next().await {
            text.push_str(&delta.ok()?);
            if text.chars().count() >= app.config.ai_reply_max_chars {
                break;
            }
        }
        Some(text)
    };
    let text = tokio::time::timeout(app.config.ai_deadline, collect).await.ok().flatten()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Who said how much, then the lines that mention the reader, then the latest ones.
fn digest(lines: &[(String, String)], mentioned: &[bool]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (who, _) in lines {
        match counts.iter_mut().find(|(name, _)| *name == who.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((who.as_str(), 1)),
        }
    }
    let people: Vec<String> = counts.iter().map(|(who, n)| format!("{who} ({n})")).collect();
    let n = lines.len();
    let mut out = format!(
        "**{n} new message{}** since you last read, from {}.\n",
        if n == 1 { "" } else { "s" },
        people.join(", ")
    );
    let mut picked: Vec<usize> = (0..n).filter(|&i| mentioned[i]).take(DIGEST_LINES).collect();
    for i in (0..n).rev() {
        if picked.len() >= DIGEST_LINES {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.sort_unstable();
    for i in picked {
        let (who, body) = &lines[i];
        let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = flat.chars().take(160).collect();
        let more = if flat.chars().count() > 160 { "…" } else { "" };
        let mark = if mentioned[i] { " (mentions you)" } else { "" };
        out.push_str(&format!("- **{who}**{mark}: {short}{more}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_counts_people_and_keeps_mentions_and_the_latest() {
        let lines: Vec<(String, String)> =
            (0..12).map(|i| (if i % 2 == 0 { "Ann" } else { "Bo" }.to_owned(), format!("line {i}"))).collect();
        let mut mentioned = vec![false; 12];
        mentioned[1] = true;
        let d = digest(&lines, &mentioned);
        assert!(d.starts_with("**12 new messages** since you last read, from Ann (6), Bo (6)."), "{d}");
        assert!(d.contains("- **Bo** (mentions you): line 1\n"), "{d}");
        assert!(d.contains("line 11") && !d.contains("line 3\n"), "{d}");
        assert_eq!(d.lines().count(), 1 + DIGEST_LINES);
    }

    #[test]
    fn mentions_read_as_names() {
        let id = Uuid::new_v4();
        let names = HashMap::from([(id, "Ann".to_owned())]);
        assert_eq!(readable(&format!("hi <@{id}>, and <@{}>", Uuid::nil()), &names), "hi @Ann, and @someone");
    }
}
