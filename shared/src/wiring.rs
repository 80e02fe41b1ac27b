//! The one place an `App` is assembled from the configuration. Every entry point — each Lambda
//! function, `mathia-local` and its emulator — goes through `assemble`; they differ only in how
//! frames reach sockets and how queue messages are received (`Entry`).
//!
//! With `MATHIA_BACKEND=aws` every resource must be configured (the connections table, the
//! three queues, the files bucket, the WebSocket management endpoint): a process missing one
//! refuses to start and names it. There is no silent local fallback.

use std::{collections::HashMap, sync::Arc};

use anyhow::bail;

use crate::{
    App, Config,
    adapters::{
        aws::{self, ApiGatewayPush, DynamoConnections, LayeredPush, SqsQueue},
        local::{LocalPush, LocalQueue, LocalQueueReceivers},
        postgres,
    },
    ai::{
        connectors::{self, Connector},
        tools::{self, Tool, ToolSource},
    },
    app::AfterStore,
    config::Backend,
    ports::{Clock, Push, QueueName},
};

/// How an entry point reaches sockets and receives queue messages.
pub enum Entry {
    /// A Lambda function: API Gateway holds the sockets, event source mappings deliver the
    /// queues' messages to the worker functions.
    Lambda,
    /// A gateway process holding sockets itself (`mathia-local`). `own_endpoint` is the base URL
    /// at which it serves the management API (`/@connections/{id}`); with the AWS backend it is
    /// recorded with every connection so other instances can push to them.
    Gateway { own_endpoint: Option<String>, clock: Option<Arc<dyn Clock>> },
}

/// Where a gateway process takes its jobs from.
pub enum Consumers {
    /// In-process queues: the process consumes what it sends.
    Local { queue: LocalQueue, receivers: LocalQueueReceivers },
    /// SQS: the process long-polls the queues, as Lambda's event source mappings would.
    Sqs(Arc<SqsQueue>),
    /// Someone else consumes (a Lambda function: its event source mapping).
    Elsewhere,
}

/// What an entry point runs with.
pub struct Assembly {
    pub app: App,
    /// The sockets this process holds (none on Lambda).
    pub sockets: LocalPush,
    pub consumers: Consumers,
}

/// The resources the AWS backend needs, each checked to be configured.
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    /// API Gateway's management endpoint; a gateway process uses its own.
    pub ws_endpoint: String,
    /// Each queue's URL, or the name it is looked up by.
    pub queues: HashMap<QueueName, QueueRef>,
}

pub enum QueueRef {
    Url(String),
    Name(String),
}

impl AwsResources {
    /// What `config` names, or an error listing every variable that is missing.
    pub fn from_config(config: &Config, own_endpoint: Option<&str>) -> anyhow::Result<Self> {
        let aws = &config.aws;
        let mut missing = Vec::new();
        let table = aws.connections_table.clone();
        if table.is_none() {
            missing.push("MATHIA_CONNECTIONS_TABLE (the DynamoDB table of connections)".to_owned());
        }
        let bucket = config.files_bucket.clone();
        if bucket.is_none() {
            missing.push("MATHIA_FILES_BUCKET (the S3 bucket for shared files)".to_owned());
        }
        let ws_endpoint = own_endpoint.map(str::to_owned).or_else(|| aws.ws_endpoint.clone());
        if ws_endpoint.is_none() {
            missing.push("MATHIA_WS_ENDPOINT (API Gateway's WebSocket management endpoint)".to_owned());
        }
        let mut queues = HashMap::new();
        for name in QueueName::ALL {
            match (aws.queue_urls.get(&name), &aws.queue_prefix) {
                (Some(url), _) => {
                    queues.insert(name, QueueRef::Url(url.clone()));
                }
                (None, Some(prefix)) => {
                    queues.insert(name, QueueRef::Name(format!("{prefix}{}", name.as_str())));
                }
                (None, None) => missing.push(format!(
                    "{} or MATHIA_QUEUE_PREFIX (the SQS queue `{}`)",
                    name.url_var(),
                    name.as_str()
                )),
            }
        }
        if !missing.is_empty() {
            bail!("MATHIA_BACKEND=aws needs every resource configured; missing: {}", missing.join(", "));
        }
        Ok(Self {
            table: table.expect("checked"),
            bucket: bucket.expect("checked"),
            ws_endpoint: ws_endpoint.expect("checked"),
            queues,
        })
    }

    /// The queues' URLs: the configured ones as they are, the named ones looked up (a queue that
    /// does not exist is named in the error).
    async fn queue(&self, client: aws_sdk_sqs::Client) -> anyhow::Result<SqsQueue> {
        let mut urls = HashMap::new();
        for name in QueueName::ALL {
            let Some(queue) = self.queues.get(&name) else { continue };
            let url = match queue {
                QueueRef::Url(url) => url.clone(),
                QueueRef::Name(queue) => match client.get_queue_url().queue_name(queue).send().await {
                    Ok(out) => out.queue_url.unwrap_or_default(),
                    Err(e) => bail!(
                        "the SQS queue `{queue}` ({} or MATHIA_QUEUE_PREFIX) cannot be found: {}",
                        name.url_var(),
                        e.as_service_error().map(ToString::to_string).unwrap_or_else(|| e.to_string())
                    ),
                },
            };
            urls.insert(name, url);
        }
        Ok(SqsQueue::new(client, urls))
    }
}

/// What the assistant can do, in the order connectors are asked; general chat comes last and
/// takes whatever nothing else claims.
pub fn connectors() -> &'static [&'static dyn Connector] {
    &[
        &connectors::Help,
        &connectors::WalletBalance,
        &connectors::Notes,
        &connectors::Summary,
        &crate::reminders::ReminderConnector,
        &crate::calendly::CalendlyConnector,
        &connectors::Chat,
    ]
}

/// Mathia's own tools, offered to the model (and by Mathia's MCP server).
const TOOLS: &[&dyn Tool] = &[
    &tools::RememberNote,
    &tools::LookupNotes,
    &crate::chat::tools::SearchMessages,
    &tools::RoomPeople,
    &tools::RoomHistory,
    &tools::WalletBalance,
    &crate::reminders::tools::SetReminder,
    &crate::reminders::tools::ListReminders,
    &crate::reminders::tools::CancelReminder,
    &crate::calendly::tools::CalendarEvents,
    &crate::calendly::tools::CheckAvailability,
    &crate::calendly::tools::ScheduleMeeting,
    &crate::calendly::tools::RoomFreeTimes,
];

pub fn tools() -> &'static [&'static dyn Tool] {
    TOOLS
}

static MATHIA_TOOLS: tools::Fixed = tools::Fixed(TOOLS);
static TOOL_SOURCES: &[&dyn ToolSource] = &[&MATHIA_TOOLS, &crate::mcp::client::McpTools];

/// Where the assistant's tools come from: Mathia's own, then the workspace's MCP servers.
pub fn tool_sources() -> &'static [&'static dyn ToolSource] {
    TOOL_SOURCES
}

/// What runs after a person's message is stored and sent to the room.
pub fn after_store() -> &'static [&'static dyn AfterStore] {
    &[&crate::moderation::Buffer, &crate::ai::Ask]
}

/// Builds the `App` for an entry point.
pub async fn assemble(config: Config, entry: Entry) -> anyhow::Result<Assembly> {
    // Check the configuration before any connection is made: a misconfigured function should
    // say what is missing, not time out on something else first.
    let own_endpoint = match &entry {
        Entry::Gateway { own_endpoint, .. } => own_endpoint.clone(),
        Entry::Lambda => None,
    };
    let resources = match config.backend {
        Backend::Aws => Some(AwsResources::from_config(&config, own_endpoint.as_deref())?),
        Backend::Local => None,
    };
    let db = postgres::connect(&config.database_url).await?;
    let sockets = LocalPush::new();
    let mut builder = App::builder(config.clone(), db);
    if let Entry::Gateway { clock: Some(clock), .. } = &entry {
        builder = builder.clock(clock.clone());
    }
    let Some(resources) = resources else {
        // The local backend: in-process queues, consumed by a gateway process.
        let (queue, receivers) = LocalQueue::new();
        builder = builder.queue(Arc::new(queue.clone()));
        let consumers = match entry {
            Entry::Lambda => Consumers::Elsewhere,
            Entry::Gateway { .. } => {
                // One process serves this database: every logout, profile change and limited
                // action runs in it.
                builder = builder.push(Arc::new(sockets.clone())).sole_process();
                Consumers::Local { queue, receivers }
            }
        };
        return Ok(Assembly { app: builder.build()?, sockets, consumers });
    };

    let sdk = aws::sdk_config(&config.aws).await;
    let api_gateway: Arc<dyn Push> = Arc::new(ApiGatewayPush::new(sdk.clone(), Some(resources.ws_endpoint.clone())));
    let registry = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), &resources.table);
    let queue = Arc::new(resources.queue(aws_sdk_sqs::Client::new(&sdk)).await?);
    // Emulators serve buckets by path, not by virtual host.
    let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(config.aws.endpoint_url.is_some()).build();
    let files = crate::files::s3::S3FileStore::new(aws_sdk_s3::Client::from_conf(s3), &resources.bucket);
    builder = builder.connections(Arc::new(registry)).queue(queue.clone()).files(Arc::new(files));
    let (push, consumers): (Arc<dyn Push>, _) = match entry {
        Entry::Lambda => (api_gateway, Consumers::Elsewhere),
        Entry::Gateway { own_endpoint, .. } => {
            builder = builder.own_endpoint(own_endpoint);
            (Arc::new(LayeredPush { local: sockets.clone(), remote: api_gateway }), Consumers::Sqs(queue))
        }
    };
    Ok(Assembly { app: builder.push(push).build()?, sockets, consumers })
}

/// The `App` a Lambda function runs with.
pub async fn lambda_app(config: Config) -> anyhow::Result<App> {
    Ok(assemble(config, Entry::Lambda).await?.app)
}

/// The `App` of a gateway process (`mathia-local`).
pub async fn gateway_app(
    config: Config,
    own_endpoint: Option<String>,
    clock: Option<Arc<dyn Clock>>,
) -> anyhow::Result<Assembly> {
    assemble(config, Entry::Gateway { own_endpoint, clock }).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::{connectors::connector_for, router::route};

    #[test]
    fn every_intent_reaches_its_connector() {
        let table = [
            ("remind me to stretch in 10 mins", "reminders"),
            ("remember that the launch is on Friday", "notes"),
            ("summarize this week", "summary"),
            ("check my calendar", "calendly"),
            ("am I free tomorrow at 3pm?", "calendly"),
            ("schedule a meeting with ana@example.com tomorrow afternoon", "calendly"),
            ("/calendly connect", "calendly"),
            ("what's the wallet balance", "wallet"),
            ("help", "help"),
            ("tell me a joke", "chat"),
        ];
        for (phrase, connector) in table {
            assert_eq!(connector_for(connectors(), route(phrase)).name(), connector, "{phrase:?}");
        }
    }
}
