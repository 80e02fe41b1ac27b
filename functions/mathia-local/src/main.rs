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
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let own_endpoint = config.aws.ws_endpoint.clone().unwrap_or_else(|| format!("http://{addr}"));
    let local = Local::start(config, Some(own_endpoint), None).await?;
    tracing::info!("Mathia is running on http://{addr}");
    local.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
