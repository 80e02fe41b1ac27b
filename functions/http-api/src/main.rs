//! `http-api`: the HTTP API on Lambda — the very `Router` that `mathia-local` serves, run by
//! `lambda_http`.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mathia::telemetry::init_lambda();
    let app = mathia::wiring::lambda_app(mathia::Config::from_env()?).await?;
    lambda_http::run(mathia::handlers::http::router(app)).await
}
