//! AWS adapters: the connection registry on DynamoDB, `Push` through API Gateway's management
//! API, and queues on SQS. They take an `SdkConfig`, so the same code talks to AWS, LocalStack
//! or any emulator on `AWS_ENDPOINT_URL`.

mod apigw;
mod dynamo;
mod sqs;

pub use apigw::{ApiGatewayPush, LayeredPush};
pub use dynamo::DynamoConnections;
pub use sqs::{ReceivedMessage, SqsQueue};

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, timeout::TimeoutConfig};

use crate::config::AwsSettings;

/// The SDK's own connect timeout, kept when the attempt timeouts are set.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// One attempt of a call may take `attempt`; one that takes longer fails and is retried like a
/// dropped connection (three attempts with jittered backoff of up to 1 s, then 2 s, so a hung
/// service fails a call after about 3 × `attempt` + 3 s). A long poll widens it by its wait
/// (`SqsQueue::receive`).
pub(crate) fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(attempt).build()
}

/// The SDK configuration for Mathia's settings: the SDK's usual environment chain, attempt
/// timeouts, plus the emulator endpoint when one is set (with throwaway credentials if none are
/// configured).
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .timeout_config(timeouts(settings.attempt_timeout));
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "emulator"));
        }
    }
    loader.load().await
}
