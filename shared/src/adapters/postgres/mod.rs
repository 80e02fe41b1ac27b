//! Postgres: the system of record. One module per aggregate, SQL inline beside the code that
//! runs it. `connect` creates the database when it is missing and runs the migrations.

pub mod ai_jobs;
pub mod attention;
pub mod calendly;
pub mod files;
pub mod group_commit;
pub mod invites;
pub mod mcp_servers;
pub mod messages;
pub mod moderation;
pub mod notes;
pub mod onboarding;
pub mod pins;
pub mod reminders;
pub mod rooms;
pub mod search;
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

/// A pooled connection idle this long is pinged before it is handed out.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens a pool, creating the database if it does not exist, and migrates it.
///
/// A process that starts against a database that exists and is up to date (every Lambda cold
/// start, and every restart) pays one connection and one query for both checks: the database is
/// created only when connecting to it says it does not exist, and the migrator, with its
/// advisory lock and half a dozen statements, runs only when `is_migrated` sees something to do.
pub async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .context("DATABASE_URL is not a Postgres URL")?
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let unreachable = || {
        format!(
            "cannot reach Postgres at {}:{} as {} (DATABASE_URL): start it (on Debian, \
             `bash scripts/services` starts or installs it) or point DATABASE_URL at one",
            options.get_host(),
            options.get_port(),
            options.get_username()
        )
    };
    let pool = match pool_options().connect_with(options.clone()).await {
        Err(e) if is_missing_database(&e) => {
            tracing::info!("creating the database");
            if let Err(e) = sqlx::Postgres::create_database(database_url).await {
                // Another process may have created it at the same moment.
                if !sqlx::Postgres::database_exists(database_url).await.unwrap_or(false) {
                    return Err(e).context("cannot create the database");
                }
            }
            pool_options().connect_with(options.clone()).await
        }
        connected => connected,
    }
    .with_context(unreachable)?;
    if !is_migrated(&pool).await {
        MIGRATOR.run(&pool).await.context("migrations failed")?;
    }
    Ok(pool)
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(3))
        // A round trip to check every connection before every query costs the hot path as much
        // as a small insert. Only a connection that sat idle is checked: one in use a moment ago
        // is alive, and if Postgres went away since, that query fails and the pool drops it.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// SQLSTATE 3D000, invalid_catalog_name: the database in the URL does not exist.
fn is_missing_database(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"))
}

/// True when the database holds exactly the binary's migrations, each applied successfully and
/// unchanged since (the checks `MIGRATOR.run` makes, in one query and without its lock).
/// Anything else (no migrations table yet, one pending, failed or edited) is for the migrator,
/// which applies it or says what is wrong.
pub async fn is_migrated(pool: &PgPool) -> bool {
    let applied: Vec<(i64, Vec<u8>, bool)> =
        match sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            Err(_) => return false,
        };
    let expected: Vec<_> = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
    applied.len() == expected.len()
        && applied.iter().zip(&expected).all(|((version, checksum, success), migration)| {
            *success && *version == migration.version && checksum[..] == migration.checksum[..]
        })
}

/// True when the error means Postgres is unreachable rather than that the query was wrong:
/// no connection to be had, a connection lost, or the server ending it (a shutdown, a restart,
/// an administrator terminating the backend: SQLSTATE class 08 and 57P01–57P03).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// The one place that decides what a Postgres failure means to whoever asked: unavailable when
/// Postgres cannot be reached (see [`is_unavailable`]), internal otherwise.
impl From<sqlx::Error> for crate::error::Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "Postgres unavailable");
            Self::Unavailable(crate::error::Dependency::Storage)
        } else {
            Self::internal(anyhow::Error::new(e).context("database error"))
        }
    }
}

/// The name of the unique constraint (or index) a write violated, if that is what failed.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}
