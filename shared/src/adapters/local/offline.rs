//! The built-in offline responder: with no model configured, the assistant says so honestly
//! (and how to configure one) instead of pretending. Its replies are not billed.

use async_trait::async_trait;
use futures::StreamExt;

use crate::ports::{Ai, AiError, ChatMessage, Deltas};

pub const OFFLINE_REPLY: &str = "I'm running without an AI model, so I can't answer that yet. \
An operator can connect one by setting `MATHIA_AI_BASE_URL` (any OpenAI-compatible endpoint, \
such as OpenAI, Ollama or vLLM), `MATHIA_AI_MODEL` and, if needed, `MATHIA_AI_API_KEY`. \
Meanwhile I can still set reminders, remember notes, show the wallet balance and help — try \
`@mathia help`.";

#[derive(Debug, Default)]
pub struct OfflineResponder;

#[async_trait]
impl Ai for OfflineResponder {
    fn is_model(&self) -> bool {
        false
    }

    async fn stream(&self, _messages: Vec<ChatMessage>) -> Result<Deltas, AiError> {
        let words: Vec<Result<String, AiError>> =
            OFFLINE_REPLY.split_inclusive(' ').map(|w| Ok(w.to_owned())).collect();
        Ok(futures::stream::iter(words).boxed())
    }
}
