//! Files on S3: presigned PUT for uploads and presigned GET for downloads (a few minutes each),
//! objects encrypted server-side (the bucket's default encryption; see infra/template.yaml).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::{Client, presigning::PresigningConfig};
use uuid::Uuid;

use crate::ports::{FileStore, MAX_BYTES, StoreError, URL_TTL};

pub struct S3FileStore {
    client: Client,
    bucket: String,
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

fn presign(ttl: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(ttl).map_err(other)
}

impl S3FileStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// Where a validated file lives.
    fn key(file_id: Uuid) -> String {
        format!("files/{file_id}")
    }

    /// Where the client's upload lands; the bucket's lifecycle expires what is left there.
    fn pending_key(file_id: Uuid) -> String {
        format!("pending/{file_id}")
    }

    /// An object's bytes, refused by its size when over `MAX_BYTES` (before anything is read),
    /// and cut off should the body run past what was announced.
    async fn get(&self, key: String) -> Result<Vec<u8>, StoreError> {
        let mut out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Err(StoreError::Missing),
            Err(e) => return Err(other(aws_sdk_s3::error::DisplayErrorContext(e))),
        };
        let announced = out.content_length().unwrap_or(0);
        if announced > MAX_BYTES {
            return Err(StoreError::TooLarge);
        }
        let mut bytes = Vec::with_capacity(announced.max(0) as usize);
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(other)?;
            if (bytes.len() + chunk.len()) as i64 > MAX_BYTES {
                return Err(StoreError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn exists(&self, key: String) -> Result<bool, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(other(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
}

#[async_trait]
impl FileStore for S3FileStore {
    async fn upload_url(
        &self,
        file_id: Uuid,
        _room_id: Uuid,
        content_type: &str,
        size: i64,
    ) -> Result<String, StoreError> {
        // The declared size becomes a signed header: S3 refuses a PUT of any other length.
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::pending_key(file_id))
            .content_type(content_type)
            .content_length(size)
            .presigned(presign(URL_TTL)?)
            .await
            .map_err(other)?;
        Ok(req.uri().to_owned())
    }

    async fn read(&self, file_id: Uuid, _room_id: Uuid) -> Result<Vec<u8>, StoreError> {
        // An accepted upload has moved; a `file_message` resent after the move still finds it.
        match self.get(Self::pending_key(file_id)).await {
            Err(StoreError::Missing) => self.get(Self::key(file_id)).await,
            found => found,
        }
    }

    async fn delete(&self, file_id: Uuid) -> Result<(), StoreError> {
        for key in [Self::pending_key(file_id), Self::key(file_id)] {
            self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(other)?;
        }
        Ok(())
    }

    async fn accept(&self, file_id: Uuid, _room_id: Uuid, bytes: &[u8]) -> Result<(), StoreError> {
        // Idempotent: a second accept (a resent `file_message`) finds the file already there.
        if self.exists(Self::key(file_id)).await? {
            return Ok(());
        }
        // The checked bytes are written, not copied from the upload: a PUT that lands between
        // the check and this point must not become the file.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(file_id))
            .body(bytes.to_vec().into())
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| other(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        self.client.delete_object().bucket(&self.bucket).key(Self::pending_key(file_id)).send().await.map_err(other)?;
        Ok(())
    }

    async fn download_url(&self, file_id: Uuid, name: &str, content_type: &str) -> Result<String, StoreError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key(file_id))
            .response_content_disposition(format!("attachment; filename=\"{}\"", name.replace('"', "_")))
            .response_content_type(content_type)
            .presigned(presign(Duration::from_secs(60))?)
            .await
            .map_err(other)?;
        Ok(req.uri().to_owned())
    }
}
