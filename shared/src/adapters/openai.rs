//! The `Ai` port on any OpenAI-compatible `/chat/completions` endpoint with `stream: true`
//! (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter). Server-sent events are
//! parsed by `eventsource-stream`; a failed connection or a 5xx / 429 before the first byte is
//! retried once; a stream that goes quiet for `idle_timeout` ends with `AiError::Timeout`.

use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::ports::{Ai, AiError, ChatMessage, Deltas};

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

/// The text of one streamed chunk (`choices[0].delta.content`), if it has any.
fn delta_of(data: &str) -> Result<Option<String>, AiError> {
    let v: Value = serde_json::from_str(data).map_err(|e| AiError::Malformed(e.to_string()))?;
    let choice = v.get("choices").and_then(|c| c.get(0));
    if choice.is_none() {
        if let Some(err) = v.get("error") {
            return Err(AiError::Malformed(format!("error event: {}", err.get("message").unwrap_or(err))));
        }
        return Err(AiError::Malformed("no choices in the event".into()));
    }
    Ok(choice.and_then(|c| c.pointer("/delta/content")).and_then(Value::as_str).map(str::to_owned))
}

#[async_trait]
impl Ai for OpenAiCompatible {
    fn is_model(&self) -> bool {
        true
    }

    async fn stream(&self, messages: Vec<ChatMessage>) -> Result<Deltas, AiError> {
        let mut body = json!({ "model": self.model, "messages": messages, "stream": true });
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        let res = match self.open(&body).await {
            Err(e) if retryable(&e) => {
                tracing::warn!(error = %e, "model request failed; retrying once");
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.open(&body).await?
            }
            other => other?,
        };
        let idle = self.idle_timeout;
        let mut events = res.bytes_stream().eventsource();
        let stream = async_stream(move |tx| async move {
            loop {
                let next = match tokio::time::timeout(idle, events.next()).await {
                    Err(_) => {
                        let _ = tx.send(Err(AiError::Timeout)).await;
                        return;
                    }
                    Ok(None) => return,
                    Ok(Some(Err(e))) => {
                        let _ = tx.send(Err(AiError::Malformed(e.to_string()))).await;
                        return;
                    }
                    Ok(Some(Ok(event))) => event,
                };
                if next.data.trim() == "[DONE]" {
                    return;
                }
                match delta_of(&next.data) {
                    Ok(Some(delta)) if !delta.is_empty() => {
                        if tx.send(Ok(delta)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        Ok(stream)
    }
}

/// A stream fed by a task, so the HTTP body is read on its own schedule.
fn async_stream<F, Fut>(produce: F) -> Deltas
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<String, AiError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<Result<String, AiError>>) -> Deltas {
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
}
