//! The context manager: what the model is told. A system prompt from the asker's goal profile,
//! the room's notes and the asker's own high-priority notes from their other rooms (never
//! another member's: see `notes::for_room`), then the room's
//! recent messages — all within a size budget (oldest history goes first, then notes).
//! The notes that made it into the prompt are the reply's sources: this room's by id and
//! excerpt, the asker's notes from other rooms only as a count (see docs/security.md).

use chrono::Utc;
use uuid::Uuid;

use crate::{
    adapters::postgres::{messages, notes, onboarding, rooms},
    app::App,
    domain::{MessageKind, NotePriority, Source, Sources},
    error::Error,
    ports::ChatMessage,
};

/// Messages of history offered to the model by default.
pub const HISTORY: i64 = 30;
/// How many characters of a note a source quotes.
const SOURCE_EXCERPT_CHARS: usize = 80;

/// What the model is told, and the notes it was told.
pub struct Prompt {
    pub messages: Vec<ChatMessage>,
    pub sources: Sources,
}

fn source_excerpt(text: &str) -> String {
    match text.char_indices().nth(SOURCE_EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The whole prompt's budget, in characters (a rough stand-in for tokens).
pub const MAX_PROMPT_CHARS: usize = 16_000;
const MAX_NOTES_CHARS: usize = 5_000;

pub async fn build(
    app: &App,
    room_id: Uuid,
    asker_id: Uuid,
    asker_name: &str,
    instruction: Option<&str>,
    history: i64,
    until_seq: Option<i64>,
) -> crate::Result<Prompt> {
    let room =
        rooms::get(&app.db, room_id).await?.ok_or_else(|| Error::not_found("room_not_found", "the room is gone"))?;
    let profile = onboarding::profile(&app.db, asker_id).await?;
    let goals = onboarding::goals(&app.db, asker_id).await?;
    let notes = notes::for_room(&app.db, &app.keyring, room_id, asker_id).await?;
    let recent = messages::recent(&app.db, &app.keyring, room_id, history).await?;

    let mut system = format!(
        "You are Mathia, the AI assistant of a team chat. You are answering in the room \"{}\". \
         Answer the latest request addressed to you (@mathia); use Markdown sparingly.\n\
         The person asking is {asker_name}",
        room.name
    );
    if let Some(p) = &profile {
        if let Some(role) = &p.role {
            system.push_str(&format!(", {role}"));
        }
        system.push_str(&format!(" (timezone {}).", p.timezone));
    } else {
        system.push('.');
    }
    system.push_str(&format!(" It is now {} UTC.\n", Utc::now().format("%Y-%m-%d %H:%M")));
    if let Some(g) = &goals {
        system.push_str(&format!("Their professional goals: {}.\n", g.goals.join("; ")));
        if let Some(focus) = &g.focus {
            system.push_str(&format!("Their current focus: {focus}.\n"));
        }
        if let Some(tone) = &g.tone {
            system.push_str(&format!("They prefer a {tone} tone.\n"));
        }
    }
    let mut notes_text = String::new();
    let mut sources = Sources::default();
    for n in &notes {
        let line = format!(
            "- [{}{}] {}\n",
            n.kind.as_str(),
            if n.priority == NotePriority::High { ", important" } else { "" },
            n.text
        );
        if notes_text.len() + line.len() > MAX_NOTES_CHARS {
            break;
        }
        let label = if n.shared { "(from another of their rooms) " } else { "" };
        notes_text.push_str(&format!("{label}{line}"));
        if n.shared {
            sources.private += 1;
        } else {
            sources.notes.push(Source { note_id: n.id, room_id: n.room_id, excerpt: source_excerpt(&n.text) });
        }
    }
    if !notes_text.is_empty() {
        system.push_str("Notes this team asked you to remember:\n");
        system.push_str(&notes_text);
    }
    if let Some(instruction) = instruction {
        system.push_str(instruction);
        system.push('\n');
    }

    let mut turns: Vec<ChatMessage> = recent
        .iter()
        // A regeneration answers the question as it was asked: what came after it is not shown.
        .filter(|m| until_seq.is_none_or(|until| m.seq <= until))
        .filter(|m| m.kind != MessageKind::System && !m.body.is_empty())
        .map(|m| match m.kind {
            MessageKind::Ai => ChatMessage::new("assistant", m.body.clone()),
            _ => {
                let who = m.author.as_ref().map(|a| a.display_name.as_str()).unwrap_or("someone");
                ChatMessage::new("user", format!("{who}: {}", m.body))
            }
        })
        .collect();
    // Keep the newest turns that fit.
    let mut used = system.len();
    let mut keep = turns.len();
    for (i, t) in turns.iter().enumerate().rev() {
        if used + t.content.len() > MAX_PROMPT_CHARS {
            break;
        }
        used += t.content.len();
        keep = i;
    }
    let turns = turns.split_off(keep);
    let mut out = vec![ChatMessage::new("system", system)];
    out.extend(turns);
    Ok(Prompt { messages: out, sources })
}
