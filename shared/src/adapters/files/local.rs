//! Files in a local folder, each sealed with its room's key. Upload and download URLs point at
//! `mathia-local` itself and carry an HMAC signature and an expiry.

use std::{path::PathBuf, sync::Arc};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::ports::{FileStore, StoreError, URL_TTL};
use crate::{
    keyring::{Aad, RoomKeyring, Sealed},
    ports::Clock,
};

type HmacSha256 = Hmac<Sha256>;

pub struct LocalFileStore {
    dir: PathBuf,
    keyring: Arc<RoomKeyring>,
    clock: Arc<dyn Clock>,
    signing_key: Vec<u8>,
}

fn aad(id: Uuid) -> Aad<'static> {
    Aad { kind: "file", id }
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

impl LocalFileStore {
    pub fn new(dir: PathBuf, keyring: Arc<RoomKeyring>, clock: Arc<dyn Clock>, master_key: &[u8; 32]) -> Self {
        // A key of its own for URL signatures, derived from the master key.
        let mut mac = HmacSha256::new_from_slice(master_key).expect("any key length");
        mac.update(b"mathia:file-url-signing-key:v1");
        let signing_key = mac.finalize().into_bytes().to_vec();
        Self { dir, keyring, clock, signing_key }
    }

    fn signature(&self, verb: &str, file_id: Uuid, expires: i64) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.signing_key).expect("any key length");
        mac.update(format!("{verb}:{file_id}:{expires}").as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn signed(&self, verb: &str, path: &str, file_id: Uuid) -> String {
        let expires = (self.clock.now() + chrono::Duration::from_std(URL_TTL).expect("ttl")).timestamp();
        format!("{path}/{file_id}?expires={expires}&sig={}", self.signature(verb, file_id, expires))
    }

    /// Checks a URL's signature and expiry: `Ok` or why not.
    pub fn verify(&self, verb: &str, file_id: Uuid, expires: i64, sig: &str) -> Result<(), &'static str> {
        let mut mac = HmacSha256::new_from_slice(&self.signing_key).expect("any key length");
        mac.update(format!("{verb}:{file_id}:{expires}").as_bytes());
        let sig = (0..sig.len())
            .step_by(2)
            .map(|i| sig.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or("bad signature")?;
        mac.verify_slice(&sig).map_err(|_| "bad signature")?;
        if self.clock.now().timestamp() > expires {
            return Err("this link has expired");
        }
        Ok(())
    }

    /// An accepted file.
    fn path(&self, file_id: Uuid) -> PathBuf {
        self.dir.join(file_id.to_string())
    }

    /// An upload waiting to be checked.
    fn upload_path(&self, file_id: Uuid) -> PathBuf {
        self.dir.join(format!("{file_id}.upload"))
    }

    /// Stores uploaded bytes, sealed with the room's key, where `file_message` checks them.
    pub async fn write(&self, file_id: Uuid, room_id: Uuid, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_sealed(self.upload_path(file_id), file_id, room_id, bytes).await
    }

    /// An accepted file's bytes (what downloads serve; never the upload).
    pub async fn read_accepted(&self, file_id: Uuid, room_id: Uuid) -> Result<Vec<u8>, StoreError> {
        self.read_sealed(self.path(file_id), file_id, room_id).await
    }

    async fn write_sealed(&self, path: PathBuf, file_id: Uuid, room_id: Uuid, bytes: &[u8]) -> Result<(), StoreError> {
        let sealed = self.keyring.seal(room_id, aad(file_id), bytes).await.map_err(other)?;
        let mut out = Vec::with_capacity(8 + sealed.nonce.len() + sealed.ciphertext.len());
        out.extend_from_slice(&sealed.key_version.to_be_bytes());
        out.extend_from_slice(&(sealed.nonce.len() as u32).to_be_bytes());
        out.extend_from_slice(&sealed.nonce);
        out.extend_from_slice(&sealed.ciphertext);
        tokio::fs::create_dir_all(&self.dir).await.map_err(other)?;
        let tmp = self.dir.join(format!("{file_id}.{}.part", Uuid::new_v4()));
        tokio::fs::write(&tmp, out).await.map_err(other)?;
        tokio::fs::rename(tmp, path).await.map_err(other)
    }

    async fn read_sealed(&self, path: PathBuf, file_id: Uuid, room_id: Uuid) -> Result<Vec<u8>, StoreError> {
        let raw = match tokio::fs::read(path).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::Missing),
            Err(e) => return Err(other(e)),
        };
        let bad = || StoreError::Other("corrupt file".into());
        let version = i32::from_be_bytes(raw.get(0..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let nonce_len = u32::from_be_bytes(raw.get(4..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let nonce = raw.get(8..8 + nonce_len).ok_or_else(bad)?.to_vec();
        let ciphertext = raw.get(8 + nonce_len..).ok_or_else(bad)?.to_vec();
        self.keyring
            .open(room_id, aad(file_id), &Sealed { key_version: version, nonce, ciphertext })
            .await
            .map_err(other)
    }
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn upload_url(
        &self,
        file_id: Uuid,
        _room_id: Uuid,
        _content_type: &str,
        _size: i64,
    ) -> Result<String, StoreError> {
        // The PUT handler bounds the body by MAX_BYTES itself.
        Ok(self.signed("put", "/api/uploads", file_id))
    }

    async fn read(&self, file_id: Uuid, room_id: Uuid) -> Result<Vec<u8>, StoreError> {
        // An accepted upload has moved; a `file_message` resent after the move still finds it.
        match self.read_sealed(self.upload_path(file_id), file_id, room_id).await {
            Err(StoreError::Missing) => self.read_accepted(file_id, room_id).await,
            found => found,
        }
    }

    async fn delete(&self, file_id: Uuid) -> Result<(), StoreError> {
        for path in [self.upload_path(file_id), self.path(file_id)] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(other(e)),
            }
        }
        Ok(())
    }

    async fn accept(&self, file_id: Uuid, room_id: Uuid, bytes: &[u8]) -> Result<(), StoreError> {
        // The checked bytes are written, not moved from the upload: a PUT that lands between
        // the check and this point must not become the file.
        if !tokio::fs::try_exists(self.path(file_id)).await.map_err(other)? {
            self.write_sealed(self.path(file_id), file_id, room_id, bytes).await?;
        }
        match tokio::fs::remove_file(self.upload_path(file_id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn download_url(&self, file_id: Uuid, _name: &str, _content_type: &str) -> Result<String, StoreError> {
        Ok(self.signed("get", "/api/downloads", file_id))
    }
}
