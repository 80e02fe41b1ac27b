//! `reminder-worker`: consumes the `reminders` SQS queue on Lambda. It only wires; the shared batch helper
//! runs each message through `mathia::workers::handle` and reports partial batch failures.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mathia::{
    lambda::aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent},
    ports::QueueName,
    workers::run_sqs_batch,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mathia::telemetry::init_lambda();
    let app = mathia::wiring::lambda_app(mathia::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move { Ok::<SqsBatchResponse, Error>(run_sqs_batch(&app, QueueName::Reminders, event.payload).await) }
    }))
    .await
}
