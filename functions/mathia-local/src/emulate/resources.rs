//! The AWS resources the deployment uses, created when missing — the same shapes as
//! `infra/template.yaml`: the connections table (a GSI, TTL), three queues each with a DLQ
//! (`maxReceiveCount` 5, the template's visibility timeouts) and the files bucket (CORS for the
//! browser's presigned uploads).

use std::collections::HashMap;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use aws_sdk_sqs::types::QueueAttributeName;
use mathia::ports::QueueName;

/// After this many receives a message goes to its queue's DLQ.
pub const MAX_RECEIVES: u32 = 5;

/// The names the environment gives the resources.
pub struct Names {
    pub table: String,
    pub queue_prefix: String,
    pub bucket: String,
}

impl Names {
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Self {
            table: var("MATHIA_CONNECTIONS_TABLE", "mathia-connections"),
            queue_prefix: var("MATHIA_QUEUE_PREFIX", "mathia-"),
            bucket: var("MATHIA_FILES_BUCKET", "mathia-files"),
        }
    }
}

pub struct Created {
    pub queue_urls: HashMap<QueueName, String>,
    pub queue_arns: HashMap<QueueName, String>,
}

/// Each queue's visibility timeout: six times its consumer's timeout, as the template sets.
fn visibility_timeout(queue: QueueName) -> u32 {
    match queue {
        QueueName::Ai => 720,
        QueueName::Moderation => 400,
        QueueName::Reminders => 180,
    }
}

pub async fn ensure(sdk: &SdkConfig, names: &Names) -> anyhow::Result<Created> {
    ensure_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table).await.context("the connections table")?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut created = Created { queue_urls: HashMap::new(), queue_arns: HashMap::new() };
    for queue in QueueName::ALL {
        let name = format!("{}{}", names.queue_prefix, queue.as_str());
        let (url, arn) = ensure_queue(&sqs, &name, visibility_timeout(queue)).await.with_context(|| name.clone())?;
        created.queue_urls.insert(queue, url);
        created.queue_arns.insert(queue, arn);
    }
    let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build();
    ensure_bucket(&aws_sdk_s3::Client::from_conf(s3), &names.bucket).await.context("the files bucket")?;
    Ok(created)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    out.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).context("the queue has no ARN")
}

async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str, visibility_s: u32) -> anyhow::Result<(String, String)> {
    if let Ok(out) = sqs.get_queue_url().queue_name(name).send().await
        && let Some(url) = out.queue_url
    {
        let arn = queue_arn(sqs, &url).await?;
        return Ok((url, arn));
    }
    let dlq_url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await?.queue_url.context("no DLQ url")?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVES}"}}"#);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.to_string())
        .send()
        .await?
        .queue_url
        .context("no queue url")?;
    tracing::info!(queue = name, "created the queue and its DLQ");
    let arn = queue_arn(sqs, &url).await?;
    Ok((url, arn))
}

pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    if client.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .key_schema(key("gsi1pk", KeyType::Hash)?)
                .key_schema(key("gsi1sk", KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?,
        )
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("expires_at").enabled(true).build()?,
        )
        .send()
        .await?;
    tracing::info!(table, "created the connections table");
    Ok(())
}

async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket().bucket(bucket).send().await?;
        tracing::info!(bucket, "created the files bucket");
    }
    // The browser PUTs uploads and GETs images straight from the bucket, from the site's origin.
    let rule = CorsRule::builder()
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_methods("HEAD")
        .allowed_origins("*")
        .allowed_headers("*")
        .max_age_seconds(3000)
        .build()?;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build()?)
        .send()
        .await?;
    Ok(())
}
