//! `Push` through API Gateway's management API (`POST /@connections/{id}`), with bounded
//! concurrency and the SDK's retries with backoff; a `GoneException` (410) becomes
//! `PushError::Gone` so the caller forgets the connection.
//!
//! Each connection may name the endpoint of the gateway holding it (several local gateways in
//! the emulated mode); one SDK client is kept per endpoint.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use aws_config::{SdkConfig, retry::RetryConfig};
use aws_sdk_apigatewaymanagement::{Client, primitives::Blob};
use tokio::sync::Semaphore;

use crate::{
    adapters::local::LocalPush,
    ports::{Frame, Push, PushError, Recipient},
};

/// Posts at most this many frames at once from one process.
const MAX_IN_FLIGHT: usize = 64;

pub struct ApiGatewayPush {
    sdk: SdkConfig,
    default_endpoint: Option<String>,
    clients: Mutex<HashMap<String, Client>>,
    in_flight: Semaphore,
}

impl ApiGatewayPush {
    /// `default_endpoint` is API Gateway's `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub fn new(sdk: SdkConfig, default_endpoint: Option<String>) -> Self {
        Self { sdk, default_endpoint, clients: Mutex::default(), in_flight: Semaphore::new(MAX_IN_FLIGHT) }
    }

    fn client_for(&self, to: Recipient<'_>) -> Result<Client, PushError> {
        let endpoint = to
            .endpoint
            .or(self.default_endpoint.as_deref())
            .ok_or_else(|| PushError::Other("no management endpoint configured".into()))?;
        Ok(self.client(endpoint))
    }

    fn client(&self, endpoint: &str) -> Client {
        let mut clients = self.clients.lock().expect("client cache lock");
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
                    .endpoint_url(endpoint)
                    .retry_config(RetryConfig::standard().with_max_attempts(3))
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }
}

#[async_trait]
impl Push for ApiGatewayPush {
    async fn close(&self, to: Recipient<'_>) -> Result<(), PushError> {
        let client = self.client_for(to)?;
        match client.delete_connection().connection_id(to.id.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Err(PushError::Gone),
            Err(e) => {
                Err(PushError::Other(format!("{}", aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e))))
            }
        }
    }

    async fn send(&self, to: Recipient<'_>, frame: &Frame) -> Result<(), PushError> {
        let client = self.client_for(to)?;
        let _permit = self.in_flight.acquire().await.map_err(|e| PushError::Other(e.to_string()))?;
        let result = client
            .post_to_connection()
            .connection_id(to.id.as_str())
            .data(Blob::new(frame.bytes().to_vec()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(service) if service.is_gone_exception() => Err(PushError::Gone),
                _ => Err(PushError::Other(format!("{}", aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e)))),
            },
        }
    }
}

/// A gateway process's `Push`: sockets it holds get frames directly; the rest go through the
/// management API of whichever gateway holds them.
pub struct LayeredPush {
    pub local: LocalPush,
    pub remote: Arc<dyn Push>,
}

#[async_trait]
impl Push for LayeredPush {
    async fn send(&self, to: Recipient<'_>, frame: &Frame) -> Result<(), PushError> {
        if self.local.holds(to.id) {
            return self.local.deliver(to.id, frame);
        }
        self.remote.send(to, frame).await
    }

    async fn send_many(&self, to: &[Recipient<'_>], frame: &Frame) -> Vec<Result<(), PushError>> {
        let here = self.local.deliver_many(to, frame);
        let elsewhere: Vec<Recipient<'_>> =
            to.iter().zip(&here).filter(|(_, h)| h.is_none()).map(|(r, _)| *r).collect();
        let mut remote = self.remote.send_many(&elsewhere, frame).await.into_iter();
        here.into_iter().map(|h| h.unwrap_or_else(|| remote.next().unwrap_or(Err(PushError::Gone)))).collect()
    }

    async fn close(&self, to: Recipient<'_>) -> Result<(), PushError> {
        if self.local.close(to.id) {
            return Ok(());
        }
        self.remote.close(to).await
    }
}
