//! API tests over real connections: one binary, one module per area (zero2prod's layout).

mod access;
mod ai;
mod auth;
mod aws;
mod calendly;
mod chat;
mod cluster;
mod deploy;
mod emulated;
mod emulator;
mod encryption;
mod errors;
mod fake_model;
mod files;
mod fuzz;
mod group_commit;
mod headers;
mod helpers;
mod lambda;
mod moderation;
mod onboarding;
mod openapi;
mod refusals;
mod reminders;
mod runtime;
mod wallet;
