//! Mathia's library: the domain, the ports and their adapters, and the handlers that every
//! function (Lambda binaries, the local gateway, tests) runs.
//!
//! - `domain`: validated values and the protocol's shapes;
//! - `protocol`: WebSocket frames in and out;
//! - `ports` / `adapters`: capabilities as traits, with local, Postgres and Redis implementations;
//! - `keyring`: per-room encryption at rest;
//! - `sessions`: who a session token belongs to (Postgres, remembered where one process serves all);
//! - `handlers`: `ws::{on_connect, on_message, on_disconnect}` and `http::router`;
//! - `lambda`: API Gateway event adapters for the Lambda binaries;
//! - `mcp`: a workspace's MCP servers, whose allow-listed tools the assistant may call;
//! - `workers`: queue job handlers, the SQS batch helper and the scheduler;
//! - `wiring`: builds an `App` with the adapters the configuration asks for.

pub mod access;
pub mod adapters;
pub mod ai;
pub mod app;
pub mod calendly;
pub mod chat;
pub mod config;
pub mod domain;
pub mod error;
pub mod fair_share;
pub mod files;
pub mod gone;
pub mod handlers;
pub mod jobs;
pub mod keyring;
pub mod lambda;
pub mod limits;
pub mod mcp;
pub mod moderation;
pub mod ports;
pub mod protocol;
pub mod realtime;
pub mod reminders;
pub mod room_order;
pub mod sessions;
pub mod telemetry;
pub mod tokens;
pub mod wiring;
pub mod workers;

pub use app::App;
pub use config::Config;
pub use error::{Error, Result};
