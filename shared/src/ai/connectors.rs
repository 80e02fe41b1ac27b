//! Connectors: what the assistant can act on, one per intent, behind one trait. The list is
//! assembled where the app is wired (`wiring::connectors`) — adding a connector touches that
//! one list; features such as reminders and Calendly bring their own.

use std::sync::LazyLock;

use async_trait::async_trait;
use uuid::Uuid;

use super::router::Intent;
use crate::{
    adapters::postgres::{notes, rooms, wallet},
    app::App,
    domain::{Message, NoteKind, NotePriority},
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_room,
};

/// What the connector was asked, and by whom.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub room_id: Uuid,
    pub asker_id: Uuid,
    pub asker_name: &'a str,
    /// The request, without the `@mathia` mention.
    pub request: &'a str,
    pub trigger: &'a Message,
}

/// How a request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A reply the connector wrote itself (not billed).
    Reply(String),
    /// A reply from the model, with an extra instruction; `keep_as` stores it as a note too.
    Model { instruction: Option<String>, keep_as: Option<NoteKind>, history: i64 },
}

#[async_trait]
pub trait Connector: Send + Sync {
    fn name(&self) -> &'static str;
    fn intents(&self) -> &'static [Intent];
    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer>;
}

/// The connector of `connectors` that claims the intent; the last one takes whatever nothing
/// else claims.
pub fn connector_for<'a>(connectors: &[&'a dyn Connector], intent: Intent) -> &'a dyn Connector {
    connectors.iter().find(|c| c.intents().contains(&intent)).or_else(|| connectors.last()).copied().unwrap_or(&Chat)
}

/// General conversation with the model.
pub struct Chat;

#[async_trait]
impl Connector for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::Chat]
    }

    async fn answer(&self, _ctx: &Ctx<'_>) -> crate::Result<Answer> {
        Ok(Answer::Model { instruction: None, keep_as: None, history: super::context::HISTORY })
    }
}

pub struct Help;

pub const HELP: &str = "Here's what I can do — mention me with `@mathia`:\n\
- **Ask anything**: I answer with your goals and this room's notes in mind.\n\
- **Reminders**: `remind me to call John in 10 mins`, `… tomorrow at 9am`, `… next Monday at 10`.\n\
- **Notes**: `remember that the launch is on Friday` — it goes to the room's Notes panel.\n\
- **Summaries**: `summarize today` or `summarize this week`.\n\
- **Calendar** (with Calendly connected): `check my calendar`, `am I free tomorrow at 3pm?`, \
`schedule a meeting with ana@example.com tomorrow afternoon`.\n\
- **Wallet**: `what's our balance?`";

#[async_trait]
impl Connector for Help {
    fn name(&self) -> &'static str {
        "help"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::Help]
    }

    async fn answer(&self, _ctx: &Ctx<'_>) -> crate::Result<Answer> {
        Ok(Answer::Reply(HELP.into()))
    }
}

pub struct WalletBalance;

#[async_trait]
impl Connector for WalletBalance {
    fn name(&self) -> &'static str {
        "wallet"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::WalletBalance]
    }

    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer> {
        let room = rooms::get(&ctx.app.db, ctx.room_id)
            .await?
            .ok_or_else(|| Error::not_found("room_not_found", "the room is gone"))?;
        let Some(w) = wallet::get(&ctx.app.db, room.workspace_id).await? else {
            return Ok(Answer::Reply("This workspace has no wallet.".into()));
        };
        let cost = ctx.app.config.ai_reply_cost_cents;
        Ok(Answer::Reply(format!(
            "The workspace wallet holds **{}.{:02} {}** ({} cents). Each AI reply costs {} cent{}.",
            w.balance_cents / 100,
            w.balance_cents % 100,
            w.currency,
            w.balance_cents,
            cost,
            if cost == 1 { "" } else { "s" }
        )))
    }
}

/// `remember that …`: one of the room's notes.
pub struct Notes;

fn note_kind(text: &str) -> NoteKind {
    let t = text.to_lowercase();
    if ["decided", "decision", "agreed", "we chose", "we'll go with"].iter().any(|w| t.contains(w)) {
        NoteKind::Decision
    } else if ["todo", "to do", "need to", "must ", "action item", "follow up"].iter().any(|w| t.contains(w)) {
        NoteKind::ActionItem
    } else if ["learned", "insight", "noticed", "turns out"].iter().any(|w| t.contains(w)) {
        NoteKind::Insight
    } else {
        NoteKind::Reference
    }
}

fn note_text(request: &str) -> String {
    static LEAD: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^(please\s+)?(remember|note|save (a )?note|keep in mind|make a note)(\s+(that|of))?\s*[:,-]?\s*",
        )
        .expect("regex")
    });
    LEAD.replace(request.trim(), "").trim().to_owned()
}

#[async_trait]
impl Connector for Notes {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::Remember]
    }

    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer> {
        let text = note_text(ctx.request);
        if text.is_empty() {
            return Ok(Answer::Reply(
                "What should I remember? Try `@mathia remember that the launch is on Friday`.".into(),
            ));
        }
        let lower = text.to_lowercase();
        let priority = if ["important", "critical", "always", "never forget"].iter().any(|w| lower.contains(w)) {
            NotePriority::High
        } else {
            NotePriority::Normal
        };
        let kind = note_kind(&text);
        let note =
            notes::add(&ctx.app.db, &ctx.app.keyring, ctx.room_id, Some(ctx.asker_id), &text, priority, kind).await?;
        push_to_room(ctx.app, ctx.room_id, &ServerEvent::NoteAdded { room_id: ctx.room_id, note }, None).await;
        Ok(Answer::Reply(format!("📝 Noted in this room's notes ({}): “{text}”", kind.as_str().replace('_', " "))))
    }
}

/// `summarize today / this week`: the model summarises, and the summary is kept as an insight.
pub struct Summary;

#[async_trait]
impl Connector for Summary {
    fn name(&self) -> &'static str {
        "summary"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::Summarize]
    }

    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer> {
        let week = ctx.request.to_lowercase().contains("week");
        let period = if week { "this week" } else { "today" };
        Ok(Answer::Model {
            instruction: Some(format!(
                "Summarize this room's conversation from {period}: decisions, action items (with owners), \
                 open questions. Be brief, use bullet points, and do not invent anything."
            )),
            keep_as: Some(NoteKind::Insight),
            history: if week { 300 } else { 150 },
        })
    }
}

impl Summary {
    /// The "since seq" variant ("Catch me up", `catch_up`): what the model is asked about the
    /// messages a person has not read yet, which it is given and nothing older.
    pub fn since_instruction(reader: &str, room: &str, count: usize) -> String {
        format!(
            "Catch {reader} up on the {count} message(s) posted in the room \"{room}\" since they last read it \
             (they are below, oldest first). Say what happened: decisions, questions for {reader}, action items \
             (with owners), anything addressed to them. Be brief, use bullet points, and do not invent anything."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::router::route;

    #[test]
    fn what_no_connector_claims_goes_to_the_last() {
        let list: [&dyn Connector; 2] = [&Help, &Chat];
        assert_eq!(connector_for(&list, route("help")).name(), "help");
        assert_eq!(connector_for(&list, route("remind me to stretch in 10 mins")).name(), "chat");
        assert_eq!(connector_for(&[], route("help")).name(), "chat");
    }

    #[test]
    fn notes_lose_their_lead_and_get_a_kind() {
        assert_eq!(note_text("remember that the launch is on Friday"), "the launch is on Friday");
        assert_eq!(note_text("note: we decided on Postgres"), "we decided on Postgres");
        assert_eq!(note_kind("we decided on Postgres"), NoteKind::Decision);
        assert_eq!(note_kind("we need to update the docs"), NoteKind::ActionItem);
        assert_eq!(note_kind("the launch is on Friday"), NoteKind::Reference);
    }
}
