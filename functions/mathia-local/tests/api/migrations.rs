//! `postgres::connect` against a database that is missing, up to date, or not what the binary's
//! migrations say: it creates and migrates the first, only connects to the second, and refuses
//! the third with the migrator's own words.

use mathia::adapters::postgres::{MIGRATOR, connect, is_migrated};
use uuid::Uuid;

use crate::helpers::{drop_database, postgres_base};

async fn applied(pool: &sqlx::PgPool) -> Vec<(i64, bool, String)> {
    sqlx::query_as("SELECT version, success, installed_on::text FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Rewrites one applied migration's row, as an edited file or a failed run would leave it.
async fn set_applied(pool: &sqlx::PgPool, version: i64, checksum: &[u8], success: bool) {
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $2, success = $3 WHERE version = $1")
        .bind(version)
        .bind(checksum)
        .bind(success)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn connect_creates_migrates_then_only_checks_and_refuses_an_edited_history() {
    let name = format!("mathia_test_{}", Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_base());

    // Missing: created, and every migration applied.
    let pool = connect(&url).await.expect("creates and migrates a missing database");
    let first = applied(&pool).await;
    let expected: Vec<i64> =
        MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).map(|m| m.version).collect();
    assert_eq!(first.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(), expected);
    assert!(first.iter().all(|(_, success, _)| *success));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await.unwrap();
    assert_eq!(users, 0);
    assert!(is_migrated(&pool).await, "the one-query check sees the database up to date");
    pool.close().await;

    // Up to date: connects, and nothing is applied again.
    let pool = connect(&url).await.expect("connects to an up-to-date database");
    assert_eq!(applied(&pool).await, first);

    // A migration edited since it was applied: refused, as the migrator refuses it.
    let last = *expected.last().unwrap();
    set_applied(&pool, last, &[0], true).await;
    assert!(!is_migrated(&pool).await);
    let err = connect(&url).await.expect_err("an edited migration is refused");
    assert!(format!("{err:#}").contains("previously applied but has been modified"), "{err:#}");

    // A migration that failed half way: refused too.
    let checksum = MIGRATOR.iter().find(|m| m.version == last).unwrap().checksum.to_vec();
    set_applied(&pool, last, &checksum, false).await;
    assert!(!is_migrated(&pool).await);
    let err = connect(&url).await.expect_err("a partly applied migration is refused");
    assert!(format!("{err:#}").contains("partially applied"), "{err:#}");
    pool.close().await;
    drop_database(name);
}
