//! A pass-through in front of the AWS services (`AWS_ENDPOINT_URL`) that counts each call the
//! functions make, by service and operation (`dynamodb.PutItem`, `sqs.SendMessage`, `s3.GET`),
//! so a benchmark can price a chat message. The functions are given its address as their
//! `AWS_ENDPOINT_URL`; requests and answers pass unchanged.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};

#[derive(Clone)]
pub struct AwsProxy {
    upstream: String,
    client: reqwest::Client,
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl AwsProxy {
    pub fn new(upstream: &str) -> Self {
        Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub fn router(self) -> Router {
        Router::new().fallback(forward).layer(DefaultBodyLimit::disable()).with_state(self)
    }
}

/// `dynamodb.Query` from `X-Amz-Target: DynamoDB_20120810.Query`, `sqs.SendMessage` from
/// `AmazonSQS.SendMessage` (or a query-protocol `Action=`), S3 by method.
fn operation(method: &Method, headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
        let service = if service.starts_with("DynamoDB") {
            "dynamodb"
        } else if service.starts_with("AmazonSQS") {
            "sqs"
        } else {
            service
        };
        return format!("{service}.{op}");
    }
    if let Some(action) = form_urlencoded::parse(body).find(|(k, _)| k == "Action") {
        return format!("sqs.{}", action.1);
    }
    format!("s3.{method}")
}

async fn forward(State(proxy): State<AwsProxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    *proxy.calls.lock().expect("calls lock").entry(operation(&method, &headers, &body)).or_default() += 1;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = proxy.client.request(method, format!("{}{path}", proxy.upstream)).body(body);
    for (name, value) in &headers {
        // reqwest sets the host and length for the upstream; the signature is not re-checked
        // by emulators.
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("the AWS endpoint did not answer: {e}")).into_response(),
    }
}
