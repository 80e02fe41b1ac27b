//! `scheduler`: Mathia's periodic jobs on an EventBridge `rate(1 minute)` schedule. It only
//! wires; `mathia::workers::scheduler::tick` does the work (the same tick `mathia-local` runs).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mathia::{
    lambda::aws_lambda_events::eventbridge::EventBridgeEvent,
    workers::scheduler::{TickReport, tick},
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mathia::telemetry::init_lambda();
    let app = mathia::wiring::lambda_app(mathia::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move { Ok::<TickReport, Error>(tick(&app).await) }
    }))
    .await
}
