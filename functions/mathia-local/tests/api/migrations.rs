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

/// Migration 0021 moves the search index into `messages.search_terms`: a database indexed by
/// the earlier `message_terms` rows keeps every message findable, each 16-byte hash cut to its
/// first 8 bytes read big-endian, as `BlindIndexKey::term` cuts a hash now.
#[tokio::test]
async fn search_terms_indexed_before_0021_are_carried_into_messages() {
    let name = format!("mathia_test_{}", Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_base());
    // The migrations up to 0020, from a copy of the directory holding only them.
    let dir = std::env::temp_dir().join(format!("mathia-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if file.ends_with(".sql") && file[..4].parse::<u32>().unwrap() <= 20 {
            std::fs::copy(&path, dir.join(&file)).unwrap();
        }
    }
    {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await.unwrap();
        admin.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.unwrap();
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap().run(&pool).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let (indexed, bare) = (Uuid::now_v7(), Uuid::now_v7());
    for (seq, id) in [(1, indexed), (2, bare)] {
        sqlx::query(
            "INSERT INTO messages (id, room_id, seq, kind, key_version, nonce, ciphertext)
             VALUES ($1, $2, $3, 'user', 1, '\\x00', '\\x00')",
        )
        .bind(id)
        .bind(Uuid::nil())
        .bind(seq as i64)
        .execute(&pool)
        .await
        .unwrap();
    }
    let hashes: [[u8; 16]; 2] =
        [*b"\x80\x01\x02\x03\x04\x05\x06\x07tail-one", *b"\x11\x22\x33\x44\x55\x66\x77\x88tail-two"];
    for hash in hashes {
        sqlx::query("INSERT INTO message_terms (term, message_id, room_id) VALUES ($1, $2, $3)")
            .bind(hash.as_slice())
            .bind(indexed)
            .bind(Uuid::nil())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    // The binary's own migrations take it from there.
    let pool = connect(&url).await.expect("migrates the rest");
    let mut terms: Vec<i64> = sqlx::query_scalar("SELECT search_terms FROM messages WHERE id = $1")
        .bind(indexed)
        .fetch_one(&pool)
        .await
        .unwrap();
    terms.sort_unstable();
    let mut expected: Vec<i64> = hashes.iter().map(|h| i64::from_be_bytes(h[..8].try_into().unwrap())).collect();
    expected.sort_unstable();
    assert_eq!(terms, expected);
    assert!(terms[0] < 0, "a hash whose first bit is set reads as a negative bigint, as in Rust");
    let bare_terms: Option<Vec<i64>> = sqlx::query_scalar("SELECT search_terms FROM messages WHERE id = $1")
        .bind(bare)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(bare_terms, None, "a message without index rows has no terms");
    let old_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('message_terms')::text").fetch_one(&pool).await.unwrap();
    assert_eq!(old_table, None);
    pool.close().await;
    drop_database(name);
}
