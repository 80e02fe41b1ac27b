//! The `Ai` port on any OpenAI-compatible `/chat/completions` endpoint with `stream: true`
//! (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter). Server-sent events are
//! parsed by `eventsource-stream`; a failed connection or a 5xx / 429 before the first byte is
//! retried once; a stream that goes quiet for `idle_timeout` ends with `AiError::Timeout`.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::ports::{Ai, AiError, ChatMessage, Delta, Deltas, FunctionCall, ToolCall, ToolSpec, TurnDeltas};

pub struct OpenAiCompatible {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
    model: String,
    idle_timeout: Duration,
    max_tokens: Option<u32>,
}

impl OpenAiCompatible {
    pub fn new(base_url: &str, api_key: Option<String>, model: Option<String>, idle_timeout: Duration) -> Self {
        let client =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        Self {
            client,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            model: model.unwrap_or_else(|| "gpt-4o-mini".into()),
            idle_timeout,
            max_tokens: None,
        }
    }

    /// Asks for at most this many tokens per reply (`max_tokens` in each request).
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    async fn open(&self, body: &Value) -> Result<reqwest::Response, AiError> {
        let mut req = self.client.post(&self.url).json(body).header("accept", "text/event-stream");
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let res = tokio::time::timeout(self.idle_timeout, req.send())
            .await
            .map_err(|_| AiError::Timeout)?
            .map_err(|e| AiError::Unreachable(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(AiError::Status(res.status().as_u16()));
        }
        Ok(res)
    }
}

fn retryable(e: &AiError) -> bool {
    match e {
        AiError::Unreachable(_) => true,
        AiError::Status(s) => *s == 429 || *s >= 500,
        _ => false,
    }
}

/// The first choice of one streamed chunk, or the provider's error.
fn choice_of(data: &str) -> Result<Value, AiError> {
    let mut v: Value = serde_json::from_str(data).map_err(|e| AiError::Malformed(e.to_string()))?;
    match v.get_mut("choices").and_then(|c| c.get_mut(0)) {
        Some(choice) => Ok(choice.take()),
        None => match v.get("error") {
            Some(err) => Err(AiError::Malformed(format!("error event: {}", err.get("message").unwrap_or(err)))),
            None => Err(AiError::Malformed("no choices in the event".into())),
        },
    }
}

/// The text of one streamed chunk (`choices[0].delta.content`), if it has any.
#[cfg(test)]
fn delta_of(data: &str) -> Result<Option<String>, AiError> {
    Ok(choice_of(data)?.pointer("/delta/content").and_then(Value::as_str).map(str::to_owned))
}

/// The most calls one turn may ask for; more is a malformed turn.
const MAX_CALLS_PER_TURN: usize = 16;
/// The longest arguments text of one call.
const MAX_ARGUMENTS_CHARS: usize = 16 * 1024;

/// Reads a streamed turn: text deltas as they come, tool calls assembled from their fragments
/// (`delta.tool_calls[i]`: the id and name once, the arguments in pieces) and handed over whole
/// when the stream ends.
#[derive(Default)]
struct TurnReader {
    calls: BTreeMap<u64, ToolCall>,
}

impl TurnReader {
    fn read(&mut self, data: &str) -> Result<Option<String>, AiError> {
        let choice = choice_of(data)?;
        let Some(delta) = choice.get("delta") else { return Ok(None) };
        if let Some(fragments) = delta.get("tool_calls").and_then(Value::as_array) {
            for f in fragments {
                let index = f.get("index").and_then(Value::as_u64).unwrap_or(0);
                if !self.calls.contains_key(&index) && self.calls.len() >= MAX_CALLS_PER_TURN {
                    return Err(AiError::Malformed("too many tool calls in one turn".into()));
                }
                let call = self.calls.entry(index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    kind: "function".into(),
                    function: FunctionCall { name: String::new(), arguments: String::new() },
                });
                if let Some(id) = f.get("id").and_then(Value::as_str) {
                    call.id = id.to_owned();
                }
                if let Some(name) = f.pointer("/function/name").and_then(Value::as_str) {
                    call.function.name.push_str(name);
                }
                if let Some(args) = f.pointer("/function/arguments").and_then(Value::as_str) {
                    if call.function.arguments.len() + args.len() > MAX_ARGUMENTS_CHARS {
                        return Err(AiError::Malformed("a tool call's arguments are too long".into()));
                    }
                    call.function.arguments.push_str(args);
                }
            }
        }
        Ok(delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned))
    }

    /// The calls asked for, each with an id (a provider that sends none gets one made up).
    fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c
            })
            .collect()
    }
}

impl OpenAiCompatible {
    async fn open_retrying(&self, body: &Value) -> Result<reqwest::Response, AiError> {
        match self.open(body).await {
            Err(e) if retryable(&e) => {
                tracing::warn!(error = %e, "model request failed; retrying once");
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.open(body).await
            }
            other => other,
        }
    }

    fn body(&self, messages: Vec<ChatMessage>) -> Value {
        let mut body = json!({ "model": self.model, "messages": messages, "stream": true });
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        body
    }

    /// The events of a streamed response, read by `TurnReader`, until `[DONE]` or the end.
    fn read_turn(&self, res: reqwest::Response) -> TurnDeltas {
        let idle = self.idle_timeout;
        let mut events = res.bytes_stream().eventsource();
        async_stream(move |tx| async move {
            let mut reader = TurnReader::default();
            loop {
                let next = match tokio::time::timeout(idle, events.next()).await {
                    Err(_) => {
                        let _ = tx.send(Err(AiError::Timeout)).await;
                        return;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        let _ = tx.send(Err(AiError::Malformed(e.to_string()))).await;
                        return;
                    }
                    Ok(Some(Ok(event))) => event,
                };
                if next.data.trim() == "[DONE]" {
                    break;
                }
                match reader.read(&next.data) {
                    Ok(Some(text)) => {
                        if tx.send(Ok(Delta::Text(text))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            let calls = reader.finish();
            if !calls.is_empty() {
                let _ = tx.send(Ok(Delta::ToolCalls(calls))).await;
            }
        })
    }
}

#[async_trait]
impl Ai for OpenAiCompatible {
    fn is_model(&self) -> bool {
        true
    }

    async fn stream(&self, messages: Vec<ChatMessage>) -> Result<Deltas, AiError> {
        let res = self.open_retrying(&self.body(messages)).await?;
        Ok(self
            .read_turn(res)
            .filter_map(|d| async move {
                match d {
                    Ok(Delta::Text(t)) => Some(Ok(t)),
                    // Offered no tools, a model that asks for one anyway is not heard.
                    Ok(Delta::ToolCalls(_)) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .boxed())
    }

    fn calls_tools(&self) -> bool {
        true
    }

    async fn turn(&self, messages: Vec<ChatMessage>, tools: &[ToolSpec]) -> Result<TurnDeltas, AiError> {
        let mut body = self.body(messages);
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters,
                    }})
                })
                .collect();
            body["tool_choice"] = json!("auto");
        }
        let res = self.open_retrying(&body).await?;
        Ok(self.read_turn(res))
    }
}

/// A stream fed by a task, so the HTTP body is read on its own schedule.
fn async_stream<F, Fut>(produce: F) -> TurnDeltas
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Delta, AiError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<Result<Delta, AiError>>) -> TurnDeltas {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_read_from_openai_chunks() {
        assert_eq!(delta_of(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#).unwrap(), Some("Hi".into()));
        assert_eq!(delta_of(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#).unwrap(), None);
        assert!(delta_of("not json").is_err());
        assert!(delta_of(r#"{"error":{"message":"overloaded"}}"#).is_err());
    }

    #[test]
    fn tool_calls_are_assembled_from_fragments() {
        let mut r = TurnReader::default();
        let events = [
            r#"{"choices":[{"delta":{"role":"assistant","content":"Let me check. "}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"set_reminder","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"text\":\"call"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"wallet_balance","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":" Jo\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let texts: Vec<_> = events.iter().filter_map(|e| r.read(e).unwrap()).collect();
        assert_eq!(texts, ["Let me check. "]);
        let calls = r.finish();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.as_str(), calls[0].function.name.as_str()), ("c1", "set_reminder"));
        assert_eq!(calls[0].function.arguments, r#"{"text":"call Jo"}"#);
        assert_eq!((calls[1].id.as_str(), calls[1].function.arguments.as_str()), ("c2", "{}"));
    }
}
