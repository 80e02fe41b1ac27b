//! Lambda entry points: API Gateway WebSocket events in, the same handlers as the local
//! gateway, API Gateway proxy responses out. (The HTTP function is `handlers::http::router`
//! under `lambda_http::run`.)

use aws_lambda_events::{
    apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest},
    encodings::Body,
};
use http::HeaderMap;

use crate::{
    app::App,
    domain::ConnectionId,
    handlers::ws::{
        Admission, ConnectError, admit_shared, on_binary_frame, on_connect, on_disconnect, on_message, on_throttled,
    },
};

pub use aws_lambda_events;

fn response(status: i64, body: &str) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.headers = HeaderMap::new();
    r.body = Some(Body::Text(body.to_owned()));
    r
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    event.request_context.connection_id.clone().map(ConnectionId::new)
}

/// `$connect`: 200 with a valid ticket, 401 without, 429 past the person's sockets, 503 when a
/// dependency is down.
pub async fn ws_connect(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let Some(connection) = connection_id(&event) else {
        return response(400, "missing connection id");
    };
    let ticket = event.query_string_parameters.first("ticket");
    match on_connect(app, &connection, ticket).await {
        Ok(()) => response(200, "connected"),
        Err(ConnectError::Unauthorized) => response(401, "missing, used or expired ticket"),
        Err(ConnectError::Unavailable) => response(503, "temporarily unavailable"),
        Err(ConnectError::TooManySockets) => response(429, "too many sockets open for this person"),
    }
}

/// `$default`: every frame is answered over the socket; the invocation itself always succeeds.
/// A frame over the socket's budget is dropped (`rate_limited` at most once a second).
pub async fn ws_message(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let Some(connection) = connection_id(&event) else {
        return response(400, "missing connection id");
    };
    if let Admission::Refuse { retry_after, tell } = admit_shared(app, &connection).await {
        if tell {
            on_throttled(app, &connection, retry_after).await;
        }
        return response(200, "");
    }
    let body = event.body.as_deref().unwrap_or("");
    if event.is_base64_encoded {
        on_binary_frame(app, &connection).await;
    } else {
        on_message(app, &connection, body).await;
    }
    response(200, "")
}

pub async fn ws_disconnect(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    if let Some(connection) = connection_id(&event) {
        on_disconnect(app, &connection).await;
    }
    response(200, "")
}
