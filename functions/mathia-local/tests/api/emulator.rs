//! An AWS emulator (moto's server, from PyPI) on a free loopback port, one per test, and the
//! resources Mathia expects in it — created through the real AWS SDK.

use std::{collections::HashMap, path::PathBuf, process::Stdio, time::Duration};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use mathia::ports::QueueName;
use mathia_local::emulate::resources::ensure_table;
use tokio::process::{Child, Command};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Emulator {
    child: Child,
    pub url: String,
}

impl Emulator {
    pub async fn start() -> Self {
        let server = std::env::var("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".venv-moto/bin/moto_server"));
        assert!(
            server.exists(),
            "the AWS emulator is missing at {}: run `bash scripts/test` (it installs moto into .venv-moto)",
            server.display()
        );
        let port = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{url}/moto-api/")).send().await.is_ok() {
                return Self { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the AWS emulator did not start");
    }

    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    }

    /// The connections table and the three queues (each with a DLQ), named with `prefix`.
    pub async fn create_resources(
        &self,
        prefix: &str,
        max_receives: u32,
        visibility_s: u32,
    ) -> HashMap<QueueName, String> {
        let sdk = self.sdk().await;
        ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &format!("{prefix}connections")).await.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut urls = HashMap::new();
        for name in QueueName::ALL {
            let queue = format!("{prefix}{}", name.as_str());
            let dlq_url =
                sqs.create_queue().queue_name(format!("{queue}-dlq")).send().await.unwrap().queue_url.unwrap();
            let dlq_arn = sqs
                .get_queue_attributes()
                .queue_url(&dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone();
            let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
            let url = sqs
                .create_queue()
                .queue_name(&queue)
                .attributes(QueueAttributeName::RedrivePolicy, redrive)
                .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.to_string())
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            urls.insert(name, url);
        }
        urls
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
