//! The assistant as an agent: the model is offered tools (`tools`, from Mathia and the
//! workspace's MCP servers), asks for calls in the OpenAI-compatible `tool_calls` shape, and is
//! given their results, round after round, until it answers in text.
//!
//! - At most `MATHIA_AI_TOOL_ROUNDS` rounds of calls; the round after them is offered no tools,
//!   so the chain always ends in an answer. The whole chain shares the reply's deadline and
//!   length cap.
//! - Each call is announced to the room (`ai_tool_call`), then its outcome (`ai_tool_result`),
//!   and both are kept with the reply (`tools`).
//! - A call runs with the asker's rights (`ToolCtx`); an unknown tool, bad arguments, a refusal,
//!   a failure or a call that outlasts `MATHIA_AI_TOOL_TIMEOUT_S` gives the model an error
//!   result, never a stuck stream.
//! - A call that changes something keeps its outcome per job (`ai_tool_calls`), so a job that
//!   is delivered again, or retried, does not act twice.
//! - `stop_ai` is heard while the model streams and between calls and rounds.
//! - Every round after the first is a model call of its own and is reserved from the wallet
//!   before it is made (a charge keyed `ai:<job>:<round>`); a workspace that cannot pay for the
//!   next round gets the answer so far, cut with a note.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    tools::{Tool, ToolCtx, ToolOutput, call_in_time},
    worker::{Chunks, End, Limit, stop_requested, stream_model},
};
use crate::{
    adapters::postgres::{ai_jobs, wallet},
    app::App,
    domain::ToolUse,
    error::Error,
    ports::{Ai, ChatMessage, ToolCall, ToolSpec},
    protocol::{ServerEvent, WsError},
    realtime::push_to_room,
};

/// What the model is told when it is offered tools.
pub const INSTRUCTION: &str = "You can call tools to look things up and to act for the person asking \
(reminders, notes, search, the room's people, calendars, the wallet, and any others listed). Call a tool \
only when the request needs it; you may call several at once. Tools act for the person asking, in this \
room. After they answer, reply briefly in plain words, saying what you did.";

/// How long a changing call's outcome is kept: longer than a queue keeps a message (SQS: 14
/// days at most), so any redelivery still finds it.
pub const KEEP_OUTCOMES: chrono::Duration = chrono::Duration::days(15);

/// The scheduler's sweep: forgets outcomes older than [`KEEP_OUTCOMES`]; how many went.
pub async fn forget_old_outcomes(app: &App) -> usize {
    match ai_jobs::forget_tool_outcomes(&app.db, app.clock.now() - KEEP_OUTCOMES).await {
        Ok(n) => n as usize,
        Err(e) => {
            tracing::warn!(error = %e, "cannot forget old tool outcomes");
            0
        }
    }
}

/// The most calls run in one round; further calls of that round are answered with an error.
pub const MAX_CALLS_PER_ROUND: usize = 8;
/// The most characters of a tool's result given back to the model.
const MAX_RESULT_CHARS: usize = 12_000;

/// One reply's chain of rounds.
pub(super) struct Agent<'a> {
    pub app: &'a App,
    pub ai: &'a dyn Ai,
    pub tools: Vec<Arc<dyn Tool>>,
    pub ctx: ToolCtx<'a>,
    pub job_id: Uuid,
    pub room_id: Uuid,
    pub workspace_id: Uuid,
    /// Whether rounds are paid for (the first was reserved by the worker).
    pub billed: bool,
}

/// How the chain ended, the calls it made, and how many rounds were reserved.
pub(super) struct Chain {
    pub end: End,
    pub uses: Vec<ToolUse>,
    pub rounds_reserved: u32,
}

impl Agent<'_> {
    pub async fn run(
        &self,
        chunks: &mut Chunks<'_>,
        mut prompt: Vec<ChatMessage>,
        deadline: tokio::time::Instant,
        budget: usize,
    ) -> Chain {
        let specs: Vec<_> = self.tools.iter().map(|t| t.spec()).collect();
        let max_rounds = self.app.config.ai_tool_rounds;
        let mut uses = Vec::new();
        let mut reserved = u32::from(self.billed);
        let mut round = 0;
        loop {
            if round > 0 {
                if stop_requested(self.app, chunks.stream_id).await {
                    return Chain { end: End::Stopped, uses, rounds_reserved: reserved };
                }
                if self.billed {
                    if !self.reserve_round(round).await {
                        return Chain { end: End::Cut(Limit::Funds), uses, rounds_reserved: reserved };
                    }
                    reserved += 1;
                }
            }
            let offered = if round < max_rounds { specs.as_slice() } else { &[] };
            let (end, calls) = stream_model(self.app, self.ai, chunks, prompt.clone(), offered, deadline, budget).await;
            // A model that asks for tools in the last round, offered none, is not heard: what it
            // said is the answer.
            if end != End::Completed || calls.is_empty() || round == max_rounds {
                return Chain { end, uses, rounds_reserved: reserved };
            }
            chunks.flush().await;
            prompt.push(ChatMessage::tool_calls("", calls.clone()));
            for (index, call) in calls.iter().enumerate() {
                if stop_requested(self.app, chunks.stream_id).await {
                    return Chain { end: End::Stopped, uses, rounds_reserved: reserved };
                }
                let (used, result) = self.call(&specs, chunks.stream_id, round, index, call).await;
                prompt.push(ChatMessage::tool_result(&call.id, result));
                uses.push(used);
            }
            round += 1;
        }
    }

    async fn reserve_round(&self, round: u32) -> bool {
        let cost = self.app.config.ai_reply_cost_cents;
        let key = format!("ai:{}:{round}", self.job_id);
        match wallet::charge(&self.app.db, self.workspace_id, cost, &key, "AI reply").await {
            Ok(wallet::Moved::New(_) | wallet::Moved::Replayed(_)) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::error!(error = %e, "a tool round could not be reserved");
                false
            }
        }
    }

    /// Runs one call, announced to the room before and after: what the room sees, and the
    /// result the model is given.
    async fn call(
        &self,
        specs: &[ToolSpec],
        stream_id: Uuid,
        round: u32,
        index: usize,
        call: &ToolCall,
    ) -> (ToolUse, String) {
        let name = call.function.name.clone();
        let arguments: Result<Value, _> = match call.function.arguments.trim() {
            "" => Ok(json!({})),
            text => serde_json::from_str(text),
        };
        let shown = arguments.as_ref().ok().filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
        push_to_room(
            self.app,
            self.room_id,
            &ServerEvent::AiToolCall {
                room_id: self.room_id,
                stream_id,
                call_id: call.id.clone(),
                name: name.clone(),
                arguments: shown.clone(),
            },
            None,
        )
        .await;
        let outcome = match arguments {
            _ if index >= MAX_CALLS_PER_ROUND => {
                Err(Error::invalid(format!("at most {MAX_CALLS_PER_ROUND} calls at once")))
            }
            Err(e) => Err(Error::invalid(format!("the arguments are not JSON: {e}"))),
            Ok(args) if !args.is_object() => Err(Error::invalid("the arguments must be a JSON object")),
            // `specs[i]` is `self.tools[i]`'s.
            Ok(args) => match specs.iter().position(|spec| spec.name == name) {
                None => Err(Error::not_found("tool_not_found", format!("there is no tool named {name:?}"))),
                Some(i) => self.run_once(self.tools[i].as_ref(), round, index, &name, args).await,
            },
        };
        let (ok, summary, result) = match outcome {
            Ok(out) => (true, out.summary, out.result),
            Err(e) => {
                let err = WsError::from(e);
                let code = serde_json::to_value(err.code).unwrap_or(Value::Null);
                tracing::info!(tool = %name, code = %code, "tool call refused or failed");
                (false, err.message.clone(), json!({"error": {"code": code, "message": err.message}}))
            }
        };
        tracing::info!(tool = %name, ok, "tool called");
        push_to_room(
            self.app,
            self.room_id,
            &ServerEvent::AiToolResult {
                room_id: self.room_id,
                stream_id,
                call_id: call.id.clone(),
                name: name.clone(),
                ok,
                summary: summary.clone(),
            },
            None,
        )
        .await;
        let mut text = result.to_string();
        if text.len() > MAX_RESULT_CHARS {
            let cut = (0..=MAX_RESULT_CHARS).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.truncate(cut);
            text.push_str("… (cut)");
        }
        (ToolUse { call_id: call.id.clone(), name, arguments: shown, ok, summary }, text)
    }

    /// Calls the tool within the time limit; one that changes things does so once per job.
    async fn run_once(
        &self,
        tool: &dyn Tool,
        round: u32,
        index: usize,
        name: &str,
        args: Value,
    ) -> crate::Result<ToolOutput> {
        let key = tool.changes_things().then(|| {
            let digest = Sha256::digest(args.to_string().as_bytes());
            format!("{round}:{index}:{name}:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
        });
        if let Some(key) = &key
            && let Some(kept) =
                ai_jobs::tool_outcome(&self.app.db, &self.app.keyring, self.room_id, self.job_id, key).await?
        {
            tracing::info!(tool = %name, "the call was made before: its outcome is reused");
            return decode(&kept);
        }
        let outcome = call_in_time(tool, &self.ctx, args).await;
        if let Some(key) = &key {
            let kept = encode(&outcome);
            ai_jobs::keep_tool_outcome(&self.app.db, &self.app.keyring, self.room_id, self.job_id, key, &kept).await?;
        }
        outcome
    }
}

/// A kept outcome: the result and summary, or the error the model was given.
fn encode(outcome: &crate::Result<ToolOutput>) -> Vec<u8> {
    let v = match outcome {
        Ok(out) => json!({"ok": true, "result": out.result, "summary": out.summary}),
        Err(e) => json!({"ok": false, "error": WsError::from(e.clone()).message}),
    };
    v.to_string().into_bytes()
}

fn decode(kept: &[u8]) -> crate::Result<ToolOutput> {
    let v: Value = serde_json::from_slice(kept).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
    if v["ok"] == true {
        Ok(ToolOutput::new(v["result"].clone(), v["summary"].as_str().unwrap_or("").to_owned()))
    } else {
        Err(Error::invalid(v["error"].as_str().unwrap_or("the tool failed").to_owned()))
    }
}
