//! Encryption at rest. Each room has AES-256-GCM data keys, one per `key_version`, stored
//! wrapped (encrypted) by the master key. A message is sealed with the room's current key and
//! an AAD that binds room and message id, so a ciphertext moved to another row does not open.
//! Rotation adds a version; old versions stay to decrypt old rows.
//!
//! Unwrapped keys are cached in memory by `(room, version)`; which version is current is cached
//! briefly, since another process may rotate (an older current key still decrypts fine).
//!
//! Each data key also gives a search index key (`blind_index`), derived when the data key is
//! unwrapped; message search stores only its keyed hashes of words.

mod blind_index;
pub use blind_index::{BlindIndexKey, TERM_HASH_BYTES};

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, Generate, Payload},
};
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

const CURRENT_VERSION_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("room {0} has no key")]
    NoKey(Uuid),
    #[error("decryption failed (wrong key, or the data was tampered with)")]
    Decrypt,
}

impl From<KeyringError> for crate::error::Error {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::Db(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

/// A message (or note, or token) sealed with a room key.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub key_version: i32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// What a sealed value is bound to, besides its room: its kind and its own id.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub kind: &'a str,
    pub id: Uuid,
}

impl<'a> Aad<'a> {
    pub fn message(id: Uuid) -> Self {
        Self { kind: "msg", id }
    }
}

pub struct RoomKeyring {
    master: Aes256Gcm,
    db: PgPool,
    keys: RwLock<HashMap<(Uuid, i32), Arc<Aes256Gcm>>>,
    index_keys: RwLock<HashMap<(Uuid, i32), Arc<BlindIndexKey>>>,
    current: RwLock<HashMap<Uuid, (i32, Instant)>>,
}

impl RoomKeyring {
    pub fn new(master_key: &[u8; 32], db: PgPool) -> Self {
        Self {
            master: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*master_key)),
            db,
            keys: RwLock::default(),
            index_keys: RwLock::default(),
            current: RwLock::default(),
        }
    }

    fn wrap_aad(room_id: Uuid, version: i32) -> Vec<u8> {
        let mut aad = b"mathia:room-key:v1:".to_vec();
        aad.extend_from_slice(room_id.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn value_aad(room_id: Uuid, aad: Aad<'_>) -> Vec<u8> {
        let mut out = format!("mathia:{}:v1:", aad.kind).into_bytes();
        out.extend_from_slice(room_id.as_bytes());
        out.extend_from_slice(aad.id.as_bytes());
        out
    }

    /// Creates a room's first key inside the transaction that creates the room.
    pub async fn create_first_key(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        room_id: Uuid,
    ) -> Result<(), KeyringError> {
        let (wrapped, nonce, key) = self.new_wrapped_key(room_id, 1);
        sqlx::query("INSERT INTO room_keys (room_id, version, wrapped_key, nonce) VALUES ($1, 1, $2, $3)")
            .bind(room_id)
            .bind(wrapped)
            .bind(nonce)
            .execute(&mut **tx)
            .await?;
        self.remember(room_id, 1, key, true);
        Ok(())
    }

    /// Adds a key version; new values use it, old ones still open. Returns the new version.
    pub async fn rotate(&self, room_id: Uuid) -> Result<i32, KeyringError> {
        loop {
            let latest: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM room_keys WHERE room_id = $1")
                .bind(room_id)
                .fetch_one(&self.db)
                .await?;
            let version = latest.ok_or(KeyringError::NoKey(room_id))? + 1;
            let (wrapped, nonce, key) = self.new_wrapped_key(room_id, version);
            let inserted = sqlx::query(
                "INSERT INTO room_keys (room_id, version, wrapped_key, nonce) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(room_id)
            .bind(version)
            .bind(wrapped)
            .bind(nonce)
            .execute(&self.db)
            .await?
            .rows_affected();
            if inserted == 1 {
                tracing::info!(%room_id, version, "room key rotated");
                self.remember(room_id, version, key, true);
                return Ok(version);
            }
            // Another rotation took this version concurrently: take the next one.
        }
    }

    pub async fn seal(&self, room_id: Uuid, aad: Aad<'_>, plaintext: &[u8]) -> Result<Sealed, KeyringError> {
        let (version, key) = self.current_key(room_id).await?;
        let nonce = Nonce::generate();
        let aad = Self::value_aad(room_id, aad);
        let ciphertext =
            key.encrypt(&nonce, Payload { msg: plaintext, aad: &aad }).map_err(|_| KeyringError::Decrypt)?;
        Ok(Sealed { key_version: version, nonce: nonce.to_vec(), ciphertext })
    }

    pub async fn open(&self, room_id: Uuid, aad: Aad<'_>, sealed: &Sealed) -> Result<Vec<u8>, KeyringError> {
        let key = self.key(room_id, sealed.key_version).await?;
        let nonce = Nonce::try_from(sealed.nonce.as_slice()).map_err(|_| KeyringError::Decrypt)?;
        let aad = Self::value_aad(room_id, aad);
        key.decrypt(&nonce, Payload { msg: &sealed.ciphertext, aad: &aad }).map_err(|_| KeyringError::Decrypt)
    }

    /// Opens a value that is UTF-8 text (message bodies, notes).
    pub async fn open_text(&self, room_id: Uuid, aad: Aad<'_>, sealed: &Sealed) -> Result<String, KeyringError> {
        String::from_utf8(self.open(room_id, aad, sealed).await?).map_err(|_| KeyringError::Decrypt)
    }

    fn new_wrapped_key(&self, room_id: Uuid, version: i32) -> (Vec<u8>, Vec<u8>, Key<Aes256Gcm>) {
        let key = Key::<Aes256Gcm>::generate();
        let nonce = Nonce::generate();
        let aad = Self::wrap_aad(room_id, version);
        let wrapped = self
            .master
            .encrypt(&nonce, Payload { msg: key.as_slice(), aad: &aad })
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        (wrapped, nonce.to_vec(), key)
    }

    /// Caches an unwrapped data key, and the index key derived from it; returns the cipher.
    fn remember(&self, room_id: Uuid, version: i32, key: Key<Aes256Gcm>, current: bool) -> Arc<Aes256Gcm> {
        let cipher = Arc::new(Aes256Gcm::new(&key));
        let index = Arc::new(BlindIndexKey::derive(key.as_slice(), room_id, version));
        self.keys.write().expect("keyring lock").insert((room_id, version), cipher.clone());
        self.index_keys.write().expect("keyring lock").insert((room_id, version), index);
        if current {
            let mut cur = self.current.write().expect("keyring lock");
            let entry = cur.entry(room_id).or_insert((version, Instant::now()));
            if version >= entry.0 {
                *entry = (version, Instant::now());
            }
        }
        cipher
    }

    async fn current_key(&self, room_id: Uuid) -> Result<(i32, Arc<Aes256Gcm>), KeyringError> {
        let cached = self.current.read().expect("keyring lock").get(&room_id).copied();
        let version = match cached {
            Some((version, at)) if at.elapsed() < CURRENT_VERSION_TTL => version,
            _ => {
                let latest: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM room_keys WHERE room_id = $1")
                    .bind(room_id)
                    .fetch_one(&self.db)
                    .await?;
                let version = latest.ok_or(KeyringError::NoKey(room_id))?;
                self.current.write().expect("keyring lock").insert(room_id, (version, Instant::now()));
                version
            }
        };
        Ok((version, self.key(room_id, version).await?))
    }

    async fn key(&self, room_id: Uuid, version: i32) -> Result<Arc<Aes256Gcm>, KeyringError> {
        if let Some(key) = self.keys.read().expect("keyring lock").get(&(room_id, version)) {
            return Ok(key.clone());
        }
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT wrapped_key, nonce FROM room_keys WHERE room_id = $1 AND version = $2")
                .bind(room_id)
                .bind(version)
                .fetch_optional(&self.db)
                .await?;
        let (wrapped, nonce) = row.ok_or(KeyringError::NoKey(room_id))?;
        let nonce = Nonce::try_from(nonce.as_slice()).map_err(|_| KeyringError::Decrypt)?;
        let aad = Self::wrap_aad(room_id, version);
        let raw =
            self.master.decrypt(&nonce, Payload { msg: &wrapped, aad: &aad }).map_err(|_| KeyringError::Decrypt)?;
        let key = Key::<Aes256Gcm>::try_from(raw.as_slice()).map_err(|_| KeyringError::Decrypt)?;
        Ok(self.remember(room_id, version, key, false))
    }

    /// The search index key of a room key version (the one a message was sealed with).
    pub async fn index_key(&self, room_id: Uuid, version: i32) -> Result<Arc<BlindIndexKey>, KeyringError> {
        if let Some(key) = self.index_keys.read().expect("keyring lock").get(&(room_id, version)) {
            return Ok(key.clone());
        }
        self.key(room_id, version).await?;
        self.index_keys
            .read()
            .expect("keyring lock")
            .get(&(room_id, version))
            .cloned()
            .ok_or(KeyringError::NoKey(room_id))
    }

    /// Every index key of some rooms (one per key version: a room's messages are indexed under
    /// the version they were sealed with), in one query for the versions.
    pub async fn index_keys_of(&self, rooms: &[Uuid]) -> Result<Vec<(Uuid, Arc<BlindIndexKey>)>, KeyringError> {
        let versions: Vec<(Uuid, i32)> =
            sqlx::query_as("SELECT room_id, version FROM room_keys WHERE room_id = ANY($1) ORDER BY room_id, version")
                .bind(rooms)
                .fetch_all(&self.db)
                .await?;
        let mut out = Vec::with_capacity(versions.len());
        for (room_id, version) in versions {
            out.push((room_id, self.index_key(room_id, version).await?));
        }
        Ok(out)
    }

    /// Seals a person's secret (a third-party token) with the master key, bound to its owner and
    /// purpose. Room keys are for room content; these belong to no room.
    pub fn seal_secret(&self, owner: Uuid, purpose: &str, secret: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce = Nonce::generate();
        let aad = format!("mathia:secret:{purpose}:{owner}");
        let sealed = self
            .master
            .encrypt(&nonce, Payload { msg: secret, aad: aad.as_bytes() })
            .expect("AES-GCM encryption cannot fail");
        (nonce.to_vec(), sealed)
    }

    pub fn open_secret(&self, owner: Uuid, purpose: &str, nonce: &[u8], sealed: &[u8]) -> Result<String, KeyringError> {
        let nonce = Nonce::try_from(nonce).map_err(|_| KeyringError::Decrypt)?;
        let aad = format!("mathia:secret:{purpose}:{owner}");
        let plain = self
            .master
            .decrypt(&nonce, Payload { msg: sealed, aad: aad.as_bytes() })
            .map_err(|_| KeyringError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| KeyringError::Decrypt)
    }
}
