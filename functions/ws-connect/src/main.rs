//! `ws-connect`: API Gateway's WebSocket `$connect` route on Lambda. It only wires: configuration,
//! tracing and adapters, then the shared handler (`mathia::lambda::ws_connect`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mathia::lambda::{aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest, ws_connect};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mathia::telemetry::init_lambda();
    let app = mathia::wiring::lambda_app(mathia::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let app = app.clone();
        async move { Ok::<_, Error>(ws_connect(&app, event.payload).await) }
    }))
    .await
}
