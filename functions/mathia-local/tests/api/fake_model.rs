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
    let behaviour = model.behaviour.lock().unwrap().clone();
    match behaviour {
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
