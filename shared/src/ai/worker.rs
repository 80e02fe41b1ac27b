//! The `ai` queue's handler: claim the job (once per job id), route, check the wallet, stream
//! the reply to the room in coalesced chunks, store it, bill it once.
//!
//! Billing rule: a reply written by the model costs `MATHIA_AI_REPLY_COST_CENTS`, charged once
//! per job (the job id is the idempotency key) when it completes, is cut at a limit, or is
//! stopped after some text was delivered. A failed reply, a reply that ends with no text, a
//! connector's own reply and the offline responder's are free.
//!
//! The charge is taken *before* the model is called (a debit keyed `ai:<job id>`, under the
//! wallet's row lock), so concurrent asks can never spend more than the wallet holds: an ask
//! that finds too little gets `insufficient_funds` and no model call. A reply that turns out
//! free is refunded (a credit keyed `ai-refund:<job id>`) before its end is announced.
//!
//! A regeneration (`AiJob::regenerates`, see `regenerate`) runs the same way under its own job
//! id (so it is billed once more), announces the reply it replaces in `ai_stream_start`, and
//! rewrites that reply when it ends; one that fails or delivers no text leaves the old reply as
//! it was (and is refunded). The notes that informed a reply are stored with it as `sources`.
//!
//! Limits: the model is asked for at most `MATHIA_AI_MAX_TOKENS`; a reply streams for at most
//! `MATHIA_AI_DEADLINE_S` and keeps at most `MATHIA_AI_REPLY_MAX_CHARS` characters — past
//! either it ends with a note saying so, and is stored and billed like a completed one.

use std::time::{Duration, Instant};

use futures::StreamExt;
use uuid::Uuid;

use super::{
    agent,
    connectors::{Answer, Connector, Ctx, connector_for},
    context,
    router::{self, Intent},
    strip_mention,
    tools::{ToolCtx, ToolSource},
};
use crate::{
    adapters::postgres::{
        ai_jobs::{self, Claim},
        messages::{self, NewMessage, Stored},
        notes, rooms, users, wallet,
    },
    app::App,
    domain::{Message, MessageKind, NotePriority, Sources},
    error::Error,
    jobs::AiJob,
    protocol::{ServerEvent, WsError},
    realtime::{push_to_room, push_to_user},
};

/// A token is sent at once unless another chunk went out less than this long ago; then it
/// waits at most this long, coalesced with the tokens that follow…
pub const FLUSH_EVERY: Duration = Duration::from_millis(15);
/// …or until this many characters are waiting.
pub const FLUSH_CHARS: usize = 32;
/// How often a running stream looks for a `stop_ai`.
const STOP_CHECK_EVERY: Duration = Duration::from_millis(100);

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    Completed,
    Stopped,
    Failed(String),
    /// Ended by the deadline or the length cap.
    Cut(Limit),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Limit {
    Time,
    Length,
    /// The workspace could not pay for another round of tool calls.
    Funds,
}

impl Limit {
    fn note(self) -> &'static str {
        match self {
            Self::Time => "\n\n⚠️ The reply was cut short: it reached the time limit.",
            Self::Length => "\n\n⚠️ The reply was cut short: it reached the length limit.",
            Self::Funds => "\n\n⚠️ The reply was cut short: the workspace ran out of credits.",
        }
    }
}

/// How many characters of model text a reply may keep: the cap, less room for the note.
fn text_budget(cap: usize) -> usize {
    let note = Limit::Time.note().chars().count().max(Limit::Length.note().chars().count());
    cap.saturating_sub(note)
}

/// Sends coalesced `ai_stream_chunk`s with gapless `seq`s and keeps what was sent.
pub(super) struct Chunks<'a> {
    app: &'a App,
    room_id: Uuid,
    pub(super) stream_id: Uuid,
    seq: u64,
    pending: String,
    sent: String,
    /// Characters pushed so far (sent or pending).
    chars: usize,
    last_flush: Instant,
}

impl<'a> Chunks<'a> {
    fn new(app: &'a App, room_id: Uuid, stream_id: Uuid) -> Self {
        Self {
            app,
            room_id,
            stream_id,
            seq: 0,
            pending: String::new(),
            sent: String::new(),
            chars: 0,
            last_flush: Instant::now(),
        }
    }

    pub(super) async fn push(&mut self, delta: &str) {
        self.chars += delta.chars().count();
        self.pending.push_str(delta);
        if self.pending.chars().count() >= FLUSH_CHARS || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush().await;
        }
    }

    pub(super) async fn flush(&mut self) {
        // An empty flush sends nothing and so must not restart the clock: the next token
        // would wait for no reason.
        if self.pending.is_empty() {
            return;
        }
        self.last_flush = Instant::now();
        let delta = std::mem::take(&mut self.pending);
        let event = ServerEvent::AiStreamChunk {
            room_id: self.room_id,
            stream_id: self.stream_id,
            seq: self.seq,
            delta: delta.clone(),
        };
        push_to_room(self.app, self.room_id, &event, None).await;
        self.sent.push_str(&delta);
        self.seq += 1;
    }
}

pub(super) async fn stop_requested(app: &App, stream_id: Uuid) -> bool {
    app.redis.stop_requested(stream_id).await.unwrap_or(false)
}

/// Streams one turn of the model, checking for `stop_ai` between chunks and on a timer, until
/// it ends, fails, is stopped, passes `deadline` or reaches `budget` characters. A turn that
/// ends by asking for tools (offered in `tools`) completes with those calls.
pub(super) async fn stream_model(
    app: &App,
    ai: &dyn crate::ports::Ai,
    chunks: &mut Chunks<'_>,
    prompt: Vec<crate::ports::ChatMessage>,
    tools: &[crate::ports::ToolSpec],
    deadline: tokio::time::Instant,
    budget: usize,
) -> (End, Vec<crate::ports::ToolCall>) {
    use crate::ports::Delta;
    let mut deltas = match tokio::time::timeout_at(deadline, ai.turn(prompt, tools)).await {
        Err(_) => return (End::Cut(Limit::Time), Vec::new()),
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return (End::Failed(e.to_string()), Vec::new()),
    };
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_stop_check = Instant::now();
    let mut calls = Vec::new();
    loop {
        tokio::select! {
            next = deltas.next() => match next {
                Some(Ok(Delta::Text(delta))) => {
                    let room = budget.saturating_sub(chunks.chars);
                    if delta.chars().count() >= room {
                        let fits: String = delta.chars().take(room).collect();
                        chunks.push(&fits).await;
                        return (End::Cut(Limit::Length), Vec::new());
                    }
                    chunks.push(&delta).await
                }
                Some(Ok(Delta::ToolCalls(asked))) => calls = asked,
                Some(Err(e)) => return (End::Failed(e.to_string()), Vec::new()),
                None => return (End::Completed, calls),
            },
            _ = tokio::time::sleep_until(deadline) => return (End::Cut(Limit::Time), Vec::new()),
            _ = tick.tick() => {
                chunks.flush().await;
                if last_stop_check.elapsed() >= STOP_CHECK_EVERY {
                    last_stop_check = Instant::now();
                    if stop_requested(app, chunks.stream_id).await {
                        return (End::Stopped, Vec::new());
                    }
                }
            }
        }
    }
}

/// Streams a connector's own reply in chunks, like the model's.
async fn stream_text(chunks: &mut Chunks<'_>, text: &str) {
    for piece in text.split_inclusive(' ') {
        chunks.push(piece).await;
    }
}

fn failure_text(reason: &str) -> String {
    format!(
        "\n\n⚠️ The AI model is unavailable right now ({reason}). Nothing was charged; please try again in a moment."
    )
}

/// Gives back the charges reserved for a reply that turned out free: the first round's
/// (`ai:<job>`) and each tool round's (`ai:<job>:<round>`), once per job.
async fn refund(app: &App, workspace_id: Uuid, job_id: Uuid, rounds: u32) {
    let cost = app.config.ai_reply_cost_cents;
    for round in 0..rounds {
        let key = if round == 0 { format!("ai-refund:{job_id}") } else { format!("ai-refund:{job_id}:{round}") };
        match wallet::apply(&app.db, workspace_id, wallet::Kind::Credit, cost, &key, "AI reply refund", None).await {
            Ok(wallet::Moved::New(_) | wallet::Moved::Replayed(_)) => {}
            Ok(other) => tracing::warn!(?other, "the reserved charge could not be refunded"),
            Err(e) => tracing::error!(error = %e, "the reserved charge could not be refunded"),
        }
    }
}

/// Rewrites the reply a regeneration replaces, when it delivered text; otherwise leaves it as
/// it was. Either way, the reply as it now reads.
async fn replace(
    app: &App,
    room_id: Uuid,
    old: Uuid,
    new: &NewMessage,
    delivered_text: bool,
    sources: &Sources,
) -> crate::Result<Message> {
    if delivered_text
        && messages::replace_reply(&app.db, &app.keyring, room_id, old, &new.body, new.stopped, app.clock.now()).await?
    {
        messages::set_sources(&app.db, &app.keyring, room_id, old, sources).await?;
    }
    messages::get(&app.db, &app.keyring, room_id, old)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a regenerated reply vanished")))
}

#[tracing::instrument(skip_all, fields(job_id = %job.job_id, room_id = %job.room_id))]
pub async fn handle(
    app: &App,
    job: AiJob,
    connectors: &[&dyn Connector],
    tool_sources: &[&dyn ToolSource],
) -> crate::Result<()> {
    let stream_id =
        match ai_jobs::claim(&app.db, job.job_id, job.room_id, job.message_id, job.regenerates, app.clock.now()).await?
        {
            Claim::Mine(id) => id,
            Claim::Taken => {
                tracing::info!("job already handled");
                return Ok(());
            }
        };
    let job_id = job.job_id;
    let result = run_claimed(app, job, connectors, tool_sources, stream_id).await;
    if result.is_err()
        && let Err(e) = ai_jobs::release(&app.db, job_id, stream_id).await
    {
        tracing::warn!(error = %e, "cannot release the failed job's claim; a retry waits for the takeover");
    }
    result
}

/// The job, once this attempt holds its claim.
async fn run_claimed(
    app: &App,
    job: AiJob,
    connectors: &[&dyn Connector],
    tool_sources: &[&dyn ToolSource],
    stream_id: Uuid,
) -> crate::Result<()> {
    let trigger = messages::get(&app.db, &app.keyring, job.room_id, job.message_id).await?;
    let Some(trigger) = trigger.filter(|m| !m.deleted) else {
        ai_jobs::finish(&app.db, job.job_id, None, "trigger_gone").await?;
        return Ok(());
    };
    let asker =
        users::by_id(&app.db, job.user_id).await?.ok_or_else(|| Error::not_found("not_found", "unknown user"))?;
    // A regeneration's reply, still there and still answering this question.
    let replaces = match job.regenerates {
        Some(reply_id) => match super::regenerate::reply_and_question(app, job.room_id, reply_id).await {
            Ok((reply, question)) if question.id == trigger.id => Some(reply.id),
            Ok(_) | Err(Error::NotFound { .. } | Error::Invalid { .. }) => {
                ai_jobs::finish(&app.db, job.job_id, None, "reply_gone").await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let request = strip_mention(&trigger.body);
    if replaces.is_some() && !super::regenerate::regenerable(&request) {
        ai_jobs::finish(&app.db, job.job_id, None, "not_regenerable").await?;
        return Ok(());
    }
    let room =
        rooms::get(&app.db, job.room_id).await?.ok_or_else(|| Error::not_found("room_not_found", "unknown room"))?;
    let ai = super::models::for_workspace(app, room.workspace_id).await?;
    // With a model that calls tools, only a request that *is* a command ("remind me to …",
    // "/calendly connect") goes to its connector; anything else is the model's, with tools.
    let with_tools = ai.calls_tools();
    let intent =
        if with_tools { router::route_exact(&request).unwrap_or(Intent::Chat) } else { router::route(&request) };
    let connector = connector_for(connectors, intent);
    tracing::info!(?intent, connector = connector.name(), with_tools, "routed");
    let ctx = Ctx {
        app,
        room_id: job.room_id,
        asker_id: asker.id,
        asker_name: &asker.display_name,
        request: &request,
        trigger: &trigger,
    };
    let answer = connector.answer(&ctx).await?;
    // The model answers with tools: the request went to general chat.
    let agentic = with_tools && intent == Intent::Chat;

    let cost = app.config.ai_reply_cost_cents;
    let billed = matches!(answer, Answer::Model { .. }) && ai.is_model() && cost > 0;
    if billed {
        let charge_key = format!("ai:{}", job.job_id);
        let reserved = wallet::charge(&app.db, room.workspace_id, cost, &charge_key, "AI reply").await?;
        if !matches!(reserved, wallet::Moved::New(_) | wallet::Moved::Replayed(_)) {
            let err = WsError::from(Error::InsufficientFunds {
                message: "the workspace is out of credits: ask your Mathia operator to top it up".into(),
            })
            .with_ref(trigger.client_msg_id.as_deref());
            push_to_user(app, asker.id, &ServerEvent::Error(err)).await;
            ai_jobs::finish(&app.db, job.job_id, None, "insufficient_funds").await?;
            return Ok(());
        }
    }

    if let Err(e) = app.redis.put_stream(stream_id, job.room_id).await {
        tracing::warn!(error = %e, "stop_ai will not reach this stream");
    }
    push_to_room(
        app,
        job.room_id,
        &ServerEvent::AiStreamStart { room_id: job.room_id, stream_id, reply_to: trigger.id, replaces },
        None,
    )
    .await;
    let mut chunks = Chunks::new(app, job.room_id, stream_id);
    let mut sources = Sources::default();
    let mut rounds_reserved = u32::from(billed);
    let (end, keep_as) = match answer {
        Answer::Reply(text) => {
            stream_text(&mut chunks, &text).await;
            (End::Completed, None)
        }
        Answer::Model { instruction, keep_as, history } => {
            let deadline = tokio::time::Instant::now() + app.config.ai_deadline;
            let instruction = match (agentic, instruction) {
                (true, Some(i)) => Some(format!("{i}\n{}", agent::INSTRUCTION)),
                (true, None) => Some(agent::INSTRUCTION.to_owned()),
                (false, i) => i,
            };
            let prompt = match context::build(
                app,
                job.room_id,
                asker.id,
                &asker.display_name,
                instruction.as_deref(),
                history,
                replaces.map(|_| trigger.seq),
            )
            .await
            {
                Ok(prompt) => {
                    sources = prompt.sources;
                    prompt.messages
                }
                Err(e) => {
                    if billed {
                        refund(app, room.workspace_id, job.job_id, rounds_reserved).await;
                    }
                    return Err(e);
                }
            };
            let budget = text_budget(app.config.ai_reply_max_chars);
            let end = if agentic {
                let mut tools = Vec::new();
                for source in tool_sources {
                    tools.extend(source.tools(app, room.workspace_id).await);
                }
                // A regeneration answers again without acting again.
                if replaces.is_some() {
                    tools.retain(|t| !t.changes_things());
                }
                let agent = agent::Agent {
                    app,
                    ai: ai.as_ref(),
                    tools,
                    ctx: ToolCtx { app, asker_id: asker.id, room_id: Some(job.room_id) },
                    job_id: job.job_id,
                    room_id: job.room_id,
                    workspace_id: room.workspace_id,
                    billed,
                };
                let chain = agent.run(&mut chunks, prompt, deadline, budget).await;
                sources.tools = chain.uses;
                rounds_reserved = chain.rounds_reserved;
                chain.end
            } else {
                stream_model(app, ai.as_ref(), &mut chunks, prompt, &[], deadline, budget).await.0
            };
            // A regeneration keeps nothing as a note: the first answer did, if it was to.
            (end, keep_as.filter(|_| replaces.is_none()))
        }
    };
    chunks.flush().await;
    let had_text = !chunks.sent.trim().is_empty();
    match &end {
        End::Failed(reason) => {
            tracing::warn!(%reason, "model failed");
            chunks.push(&failure_text(reason)).await;
        }
        // Out of credits is said even with nothing else to say: it is why the reply stopped.
        End::Cut(limit) if had_text || *limit == Limit::Funds => {
            tracing::info!(?limit, "reply cut at a limit");
            chunks.push(limit.note()).await;
        }
        _ => {}
    }
    chunks.flush().await;
    if chunks.sent.trim().is_empty() {
        // A message is never empty: an answer with no text (say, stopped at once) reads "…".
        chunks.push("…").await;
        chunks.flush().await;
    }
    let reply = NewMessage {
        kind: MessageKind::Ai,
        reply_to: Some(trigger.id),
        stopped: end == End::Stopped,
        ..NewMessage::system(job.room_id, chunks.sent.clone(), app.clock.now())
    };
    // Settled before the end is announced, so whoever sees `ai_stream_end` sees the balance too.
    let delivered_text = had_text && !matches!(end, End::Failed(_));
    if billed && !delivered_text {
        refund(app, room.workspace_id, job.job_id, rounds_reserved).await;
    }
    let message = match replaces {
        None => {
            let Stored::New(mut message) = messages::store_one(&app.db, &app.keyring, reply).await? else {
                return Err(Error::internal(anyhow::anyhow!("the reply was not stored")));
            };
            messages::set_sources(&app.db, &app.keyring, job.room_id, message.id, &sources).await?;
            message.sources = sources.notes;
            message.private_sources = sources.private;
            message.tools = sources.tools;
            *message
        }
        Some(old) => replace(app, job.room_id, old, &reply, delivered_text, &sources).await?,
    };
    let reply_id = message.id;
    push_to_room(app, job.room_id, &ServerEvent::AiStreamEnd { room_id: job.room_id, stream_id, message }, None).await;

    let outcome = match &end {
        End::Completed => "completed",
        End::Stopped => "stopped",
        End::Failed(_) => "failed",
        End::Cut(Limit::Time) => "cut_time",
        End::Cut(Limit::Length) => "cut_length",
        End::Cut(Limit::Funds) => "cut_funds",
    };
    if let (End::Completed, Some(kind)) = (&end, keep_as) {
        let note =
            notes::add(&app.db, &app.keyring, job.room_id, None, &chunks.sent, NotePriority::Normal, kind).await?;
        push_to_room(app, job.room_id, &ServerEvent::NoteAdded { room_id: job.room_id, note }, None).await;
    }
    ai_jobs::finish(&app.db, job.job_id, Some(reply_id), outcome).await?;
    tracing::info!(outcome, chunks = chunks.seq, "reply done");
    Ok(())
}
