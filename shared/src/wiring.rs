//! Builds an `App` with the adapters the configuration asks for: in-process ones for the local
//! backend, DynamoDB / SQS / API Gateway management for the AWS backend (on AWS or an emulator).

use std::sync::Arc;

use crate::{
    App, Config,
    adapters::{
        aws::{self, ApiGatewayPush, DynamoConnections, LayeredPush, SqsQueue},
        local::{LocalPush, LocalQueue, LocalQueueReceivers},
        postgres,
    },
    config::Backend,
    ports::{Clock, Push},
};

/// The `App` a Lambda function runs with.
pub async fn lambda_app(config: Config) -> anyhow::Result<App> {
    let db = postgres::connect(&config.database_url).await?;
    match config.backend {
        Backend::Local => App::builder(config, db).build(),
        Backend::Aws => {
            let sdk = aws::sdk_config(&config.aws).await;
            let push = ApiGatewayPush::new(sdk.clone(), config.aws.ws_endpoint.clone());
            let registry = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), &config.aws.connections_table);
            let queue =
                SqsQueue::resolve(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_urls, &config.aws.queue_prefix)
                    .await?;
            App::builder(config, db).push(Arc::new(push)).connections(Arc::new(registry)).queue(Arc::new(queue)).build()
        }
    }
}

/// Where a gateway process takes its jobs from.
pub enum Consumers {
    /// In-process queues: the process consumes what it sends.
    Local { queue: LocalQueue, receivers: LocalQueueReceivers },
    /// SQS: the process long-polls the queues, as Lambda's event source mappings would.
    Sqs(Arc<SqsQueue>),
}

/// What a gateway process (`mathia-local`) runs with.
pub struct GatewayParts {
    pub app: App,
    /// The sockets this process holds.
    pub sockets: LocalPush,
    pub consumers: Consumers,
}

/// The `App` of a gateway process. `own_endpoint` is the base URL at which this process serves
/// the management API (`/@connections/{id}`); with the AWS backend it is recorded with every
/// connection so other instances can push to them.
pub async fn gateway_app(
    config: Config,
    own_endpoint: Option<String>,
    clock: Option<Arc<dyn Clock>>,
) -> anyhow::Result<GatewayParts> {
    let db = postgres::connect(&config.database_url).await?;
    let sockets = LocalPush::new();
    let mut builder = App::builder(config.clone(), db);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let parts = match config.backend {
        Backend::Local => {
            let (queue, receivers) = LocalQueue::new();
            let app = builder.push(Arc::new(sockets.clone())).queue(Arc::new(queue.clone())).build()?;
            GatewayParts { app, sockets, consumers: Consumers::Local { queue, receivers } }
        }
        Backend::Aws => {
            let sdk = aws::sdk_config(&config.aws).await;
            let remote: Arc<dyn Push> = Arc::new(ApiGatewayPush::new(sdk.clone(), config.aws.ws_endpoint.clone()));
            let push = LayeredPush { local: sockets.clone(), remote };
            let registry = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), &config.aws.connections_table);
            let queue = Arc::new(
                SqsQueue::resolve(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_urls, &config.aws.queue_prefix)
                    .await?,
            );
            if let Some(files) = s3_files(&config, &sdk) {
                builder = builder.files(files);
            }
            let app = builder
                .push(Arc::new(push))
                .connections(Arc::new(registry))
                .queue(queue.clone())
                .own_endpoint(own_endpoint)
                .build()?;
            GatewayParts { app, sockets, consumers: Consumers::Sqs(queue) }
        }
    };
    Ok(parts)
}

/// Files on S3 when a bucket is configured.
fn s3_files(config: &Config, sdk: &aws_config::SdkConfig) -> Option<Arc<dyn crate::files::FileStore>> {
    let bucket = config.files_bucket.as_ref()?;
    // Emulators serve buckets by path, not by virtual host.
    let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(config.aws.endpoint_url.is_some()).build();
    Some(Arc::new(crate::files::s3::S3FileStore::new(aws_sdk_s3::Client::from_conf(s3), bucket)))
}
