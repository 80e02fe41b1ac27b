//! The `FileStore` port's adapters: a local folder sealed with room keys, and S3.

pub mod local;
pub mod s3;
