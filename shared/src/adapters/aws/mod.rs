//! AWS adapters: the connection registry on DynamoDB, `Push` through API Gateway's management
//! API, and queues on SQS. They take an `SdkConfig`, so the same code talks to AWS, LocalStack
//! or any emulator on `AWS_ENDPOINT_URL`.

mod apigw;
mod dynamo;
mod sqs;

pub use apigw::{ApiGatewayPush, LayeredPush};
pub use dynamo::DynamoConnections;
pub use sqs::{ReceivedMessage, SqsQueue};

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsSettings;

/// The SDK configuration for Mathia's settings: the SDK's usual environment chain, plus the
/// emulator endpoint when one is set (with throwaway credentials if none are configured).
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(settings.region.clone()));
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "emulator"));
        }
    }
    loader.load().await
}
