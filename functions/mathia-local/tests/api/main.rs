//! API tests over real connections: one binary, one module per area (zero2prod's layout).

mod access;
mod auth;
mod chat;
mod encryption;
mod errors;
mod helpers;
mod lambda;
