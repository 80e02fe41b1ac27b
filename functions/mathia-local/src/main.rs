//! Runs Mathia locally: `cargo run --release -p mathia-local`, then open http://127.0.0.1:8000.

use mathia::Config;
use mathia_local::Local;
use tokio::net::TcpListener;

/// mimalloc returns freed memory to the system: with glibc's per-thread arenas, a burst of
/// sign-ups (19 MiB per Argon2 hash) stayed in the server's RSS for good. See bench/RESULTS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mathia::telemetry::init_local();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = Config::from_env()?;
    match args.first().map(String::as_str) {
        None => {}
        Some("admin") => {
            println!("{}", mathia_local::admin::run(config, &args[1..]).await?);
            return Ok(());
        }
        Some("emulate") => return mathia_local::emulate::run(config, shutdown_signal()).await,
        Some(_) => anyhow::bail!("{}", mathia_local::admin::USAGE),
    }
    start_local_services();
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let own_endpoint = config.aws.ws_endpoint.clone().unwrap_or_else(|| format!("http://{addr}"));
    let local = Local::start(config, Some(own_endpoint), None).await?;
    tracing::info!("Mathia is running on http://{addr}");
    local.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The first run on a development machine: with the default addresses and Postgres or Redis not
/// answering, start them (installing them on Debian) the way the test command does.
fn start_local_services() {
    use std::{net::TcpStream, path::Path, time::Duration};
    let script = Path::new("scripts/services");
    let defaults = std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("REDIS_URL").is_none();
    if !defaults || !script.is_file() {
        return;
    }
    let up = |port: u16| TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok();
    if up(5432) && up(6379) {
        return;
    }
    tracing::info!("PostgreSQL or Redis is not running: starting them with scripts/services");
    match std::process::Command::new("bash").arg(script).status() {
        Ok(status) if status.success() => {}
        Ok(status) => tracing::warn!(%status, "scripts/services failed"),
        Err(e) => tracing::warn!(error = %e, "cannot run scripts/services"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
