//! Adapters: the concrete implementations behind the ports and the stores.
//! `local` holds the in-process ones, `aws` the DynamoDB / SQS / API Gateway ones; `postgres`
//! and `redis` the stores every mode uses.

pub mod aws;
pub mod files;
pub mod local;
pub mod openai;
pub mod postgres;
pub mod redis;
