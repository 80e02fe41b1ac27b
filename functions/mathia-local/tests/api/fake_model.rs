//! A fake OpenAI-compatible model: a real HTTP server on 127.0.0.1 that answers
//! `POST /v1/chat/completions` with server-sent events, records each request, and can fail in
//! the ways real providers do.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Streams these deltas, `delay` apart.
    Stream {
        deltas: Vec<String>,
        delay: Duration,
    },
    Status(u16),
    /// Accepts and never answers.
    Hang,
    /// Sends one good chunk, then garbage.
    Malformed,
    /// Streams `first`, then is silent (the connection open) until the test calls
    /// [`FakeModel::release`], then streams `rest`: a stream whose end the test decides.
    Gated {
        first: Vec<String>,
        rest: Vec<String>,
    },
    /// Streams `delta` again and again, `delay` apart, and never ends.
    Forever {
        delta: String,
        delay: Duration,
    },
    /// The n-th request gets the n-th turn (from the first again once they run out): a script
    /// of tool calls and answers, as an agent's rounds.
    Script(Vec<Turn>),
}

/// One turn of a scripted model.
#[derive(Clone, Debug)]
pub enum Turn {
    /// Streams this answer, word by word.
    Say(String),
    /// Says `text` (maybe nothing), then asks for these calls: (id, tool name, arguments JSON).
    Call { text: String, calls: Vec<(String, String, String)> },
    /// Says `first`, then waits until [`FakeModel::release`], then ends.
    Gated(String),
}

impl Turn {
    pub fn say(text: &str) -> Self {
        Turn::Say(text.into())
    }

    pub fn call(calls: &[(&str, &str, Value)]) -> Self {
        Turn::Call {
            text: String::new(),
            calls: calls.iter().map(|(id, name, args)| (id.to_string(), name.to_string(), args.to_string())).collect(),
        }
    }
}

/// A turn's tool calls as a provider streams them: the id and name first, then the arguments
/// in two fragments, interleaved across calls.
fn tool_call_events(calls: &[(String, String, String)]) -> Vec<String> {
    let chunk = |v: Value| format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": v}]}));
    let mut out = Vec::new();
    for (i, (id, name, _)) in calls.iter().enumerate() {
        out.push(chunk(json!({"tool_calls": [{"index": i, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]})));
    }
    for (i, (_, _, args)) in calls.iter().enumerate() {
        let cut = args.char_indices().nth(args.chars().count() / 2).map(|(b, _)| b).unwrap_or(0);
        out.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": &args[..cut]}}]})));
    }
    for (i, (_, _, args)) in calls.iter().enumerate() {
        let cut = args.char_indices().nth(args.chars().count() / 2).map(|(b, _)| b).unwrap_or(0);
        out.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": &args[cut..]}}]})));
    }
    out.push(format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})));
    out
}

#[derive(Clone)]
pub struct FakeModel {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

fn sse(delta: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": delta}}]})
    )
}

async fn completions(State(model): State<FakeModel>, body: axum::body::Bytes) -> Response {
    model.requests.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let (behaviour, nth) = {
        let requests = model.requests.lock().unwrap();
        (model.behaviour.lock().unwrap().clone(), requests.len() - 1)
    };
    let behaviour = match behaviour {
        Behaviour::Script(turns) => {
            let turn = turns[nth % turns.len()].clone();
            match turn {
                Turn::Say(text) => FakeModel::words(&text, Duration::from_millis(2)),
                Turn::Gated(first) => Behaviour::Gated { first: vec![first], rest: Vec::new() },
                Turn::Call { text, calls } => {
                    let words = text.split_inclusive(' ').map(sse).collect::<Vec<_>>();
                    let events = words
                        .into_iter()
                        .chain(tool_call_events(&calls))
                        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
                        .collect::<Vec<_>>();
                    return sse_response(futures::stream::iter(events).boxed());
                }
            }
        }
        other => other,
    };
    match behaviour {
        Behaviour::Script(_) => unreachable!("a script plays one of its turns"),
        Behaviour::Status(code) => (StatusCode::from_u16(code).unwrap(), "upstream trouble").into_response(),
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Behaviour::Malformed => {
            let events = vec![sse("Half an answer"), "data: {this is not json\n\n".to_owned()];
            sse_response(futures::stream::iter(events).boxed())
        }
        Behaviour::Gated { first, rest } => {
            let mut gate = model.gate.subscribe();
            let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n".to_owned();
            let first =
                futures::stream::iter(std::iter::once(role).chain(first.iter().map(|d| sse(d))).collect::<Vec<_>>());
            let rest = futures::stream::once(async move {
                let _ = gate.wait_for(|open| *open).await;
                futures::stream::iter(
                    rest.iter()
                        .map(|d| sse(d))
                        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
                        .collect::<Vec<_>>(),
                )
            })
            .flatten();
            sse_response(first.chain(rest).boxed())
        }
        Behaviour::Forever { delta, delay } => {
            let events = futures::stream::repeat(sse(&delta))
                .then(move |e| async move {
                    tokio::time::sleep(delay).await;
                    e
                })
                .boxed();
            sse_response(events)
        }
        Behaviour::Stream { deltas, delay } => {
            let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n".to_owned();
            let events = futures::stream::iter(
                std::iter::once(role)
                    .chain(deltas.into_iter().map(|d| sse(&d)))
                    .chain(std::iter::once("data: [DONE]\n\n".to_owned())),
            )
            .then(move |e| async move {
                tokio::time::sleep(delay).await;
                e
            })
            .boxed();
            sse_response(events)
        }
    }
}

fn sse_response(events: futures::stream::BoxStream<'static, String>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(events.map(Ok::<_, std::convert::Infallible>)))
        .unwrap()
}

impl FakeModel {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let model = FakeModel {
            base_url: format!("http://{}/v1", listener.local_addr().unwrap()),
            requests: Arc::default(),
            behaviour: Arc::new(Mutex::new(behaviour)),
            gate: Arc::new(tokio::sync::watch::channel(false).0),
        };
        let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(model.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        model
    }

    pub fn words(text: &str, delay: Duration) -> Behaviour {
        Behaviour::Stream { deltas: text.split_inclusive(' ').map(str::to_owned).collect(), delay }
    }

    /// `first`'s words, then `rest`'s once released.
    pub fn gated(first: &str, rest: &str) -> Behaviour {
        let words = |s: &str| s.split_inclusive(' ').map(str::to_owned).collect();
        Behaviour::Gated { first: words(first), rest: words(rest) }
    }

    /// Lets gated streams go on.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}
