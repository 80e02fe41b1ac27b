//! Logging: human-readable locally, JSON on Lambda. Filter with `RUST_LOG`.
//! What is logged: ids, sizes and outcomes — never message bodies, tokens or keys.

use tracing_subscriber::{EnvFilter, fmt};

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

pub fn init_local() {
    let _ = fmt().with_env_filter(filter()).with_target(false).try_init();
}

pub fn init_lambda() {
    let _ =
        fmt().json().with_env_filter(filter()).with_current_span(false).without_time().with_target(false).try_init();
}
