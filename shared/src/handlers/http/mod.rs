//! The HTTP API (PROTOCOL.md) as one axum `Router`: served by `lambda_http::run` on Lambda and
//! by `axum::serve` in `mathia-local` — the same router either way.

mod ai;
mod attention;
mod auth;
mod calendly;
mod dms;
pub mod error;
pub mod extract;
mod files;
mod health;
mod mcp;
mod moderation;
mod notes;
pub mod onboarding;
mod rooms;
mod search;
mod wallet;

use std::sync::Arc;

use axum::{Router, routing::get};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use error::ApiError;

use crate::app::App;

/// The HTTP API's routes, each registered together with its OpenAPI description so the two
/// cannot drift apart.
fn api_routes() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(onboarding::me))
        .routes(routes!(onboarding::profile))
        .routes(routes!(onboarding::goals))
        .routes(routes!(onboarding::workspace))
        .routes(routes!(wallet::balance))
        .routes(routes!(wallet::transactions))
        .routes(routes!(wallet::credit))
        .routes(routes!(wallet::debit))
        .routes(routes!(auth::ws_ticket))
        .routes(routes!(rooms::list, rooms::create))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::history))
        .routes(routes!(search::search))
        .routes(routes!(rooms::create_invite))
        .routes(routes!(rooms::accept_invite))
        .routes(routes!(rooms::preview_invite, rooms::revoke_invite))
        .routes(routes!(rooms::remove_member))
        .routes(routes!(dms::open))
        .routes(routes!(dms::members))
        .routes(routes!(dms::pins))
        .routes(routes!(attention::members))
        .routes(routes!(attention::mark_read))
        .routes(routes!(attention::catch_up))
        .routes(routes!(notes::list_notes, notes::add_note))
        .routes(routes!(notes::delete_note))
        .routes(routes!(notes::list_reminders, notes::add_reminder))
        .routes(routes!(notes::cancel_reminder))
        .routes(routes!(moderation::overview))
        .routes(routes!(moderation::unmute))
        .routes(routes!(calendly::status))
        .routes(routes!(calendly::connect))
        .routes(routes!(calendly::disconnect))
        .routes(routes!(calendly::events))
        .routes(routes!(calendly::free_times))
        .routes(routes!(calendly::oauth_start))
        .routes(routes!(calendly::oauth_callback))
        .routes(routes!(ai::list_models))
        .routes(routes!(ai::workspace_model, ai::choose_model))
        .routes(routes!(mcp::list, mcp::register))
        .routes(routes!(mcp::remove))
        .routes(routes!(files::declare))
        .routes(routes!(files::link))
        .routes(routes!(health::healthz))
        .routes(routes!(health::client_config))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mathia HTTP API", description = "See docs/protocol.md for shapes and error codes."),
    // `/mcp` is rmcp's service, mounted beside the routes; only its description is here.
    paths(mcp::server::endpoint),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The OpenAPI 3 document of the HTTP API, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

pub fn router(app: App) -> Router {
    let (routes, api) = api_routes().split_for_parts();
    let api = Arc::new(api);
    routes
        .route("/api/openapi.json", get(move || async move { axum::Json(api.as_ref().clone()) }))
        // Signed URLs of the local file store (S3 serves its own).
        .route(
            "/api/uploads/{id}",
            axum::routing::put(files::put_upload)
                .layer(axum::extract::DefaultBodyLimit::max(crate::files::MAX_BYTES as usize + 1024 * 1024)),
        )
        .route("/api/downloads/{id}", get(files::download))
        // Mathia's MCP server: rmcp's own service, behind the API's bearer authentication.
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(app.clone(), mcp::server::authenticate))
                .service(mcp::server::service(app.clone())),
        )
        .route("/api/{*rest}", get(unknown).post(unknown).put(unknown).delete(unknown))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

async fn unknown() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "that method is not allowed here")
}
