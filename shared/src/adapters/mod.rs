//! Adapters: the concrete implementations behind the ports and the stores.
//! `local` holds the in-process ones; `postgres` and `redis` the stores every mode uses.

pub mod local;
pub mod postgres;
pub mod redis;
