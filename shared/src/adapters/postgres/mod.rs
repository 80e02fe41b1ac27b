//! Postgres: the system of record. One module per aggregate, SQL inline beside the code that
//! runs it. `connect` creates the database when it is missing and runs the migrations.

pub mod ai_jobs;
pub mod calendly;
pub mod files;
pub mod invites;
pub mod messages;
pub mod moderation;
pub mod notes;
pub mod onboarding;
pub mod reminders;
pub mod rooms;
pub mod users;
pub mod wallet;
pub mod workspaces;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    ConnectOptions, PgPool,
    migrate::MigrateDatabase,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The migrations in the repo's `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool, creating the database if it does not exist, and migrates it.
pub async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    if !sqlx::Postgres::database_exists(database_url).await.context("cannot reach Postgres")? {
        tracing::info!("creating the database");
        if let Err(e) = sqlx::Postgres::create_database(database_url).await {
            // Another process may have created it at the same moment.
            if !sqlx::Postgres::database_exists(database_url).await.unwrap_or(false) {
                return Err(e).context("cannot create the database");
            }
        }
    }
    let options = PgConnectOptions::from_str(database_url)
        .context("DATABASE_URL is not a Postgres URL")?
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
        .context("cannot connect to Postgres")?;
    MIGRATOR.run(&pool).await.context("migrations failed")?;
    Ok(pool)
}

/// True when the error means Postgres is unreachable rather than that the query was wrong.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_))
}

/// The name of the unique constraint (or index) a write violated, if that is what failed.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}
