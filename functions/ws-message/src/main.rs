//! `ws-message`: API Gateway's WebSocket `$default` route on Lambda. It only wires: configuration,
//! tracing and adapters, then the shared handler (`mathia::lambda::ws_message`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mathia::lambda::{aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest, ws_message};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mathia::telemetry::init_lambda();
    let app = mathia::wiring::lambda_app(mathia::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let app = app.clone();
        async move { Ok::<_, Error>(ws_message(&app, event.payload).await) }
    }))
    .await
}
