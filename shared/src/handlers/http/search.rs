//! Message search: `GET /api/search` (see `chat::search`).

use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Query},
};
use crate::{
    app::App,
    chat::search::{self, Found, MAX_LIMIT},
    domain::search::SearchQuery,
};

#[derive(Deserialize)]
pub struct SearchParams {
    q: String,
    room_id: Option<Uuid>,
    before: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/search", tag = "rooms",
    params(("q" = String, Query, description = "words a message must all hold (case and punctuation ignored)"),
           ("room_id" = Option<String>, Query, description = "only this room (you must be in it)"),
           ("before" = Option<String>, Query, description = "`next_before` of the previous page"),
           ("limit" = Option<i64>, Query, description = "1..50, default 20")),
    responses((status = 200, description = "`{results: [{message, room: {id, name}, excerpt}], next_before}`, newest first"),
              (status = 400, description = "`bad_request`: no searchable word, too long, bad limit"),
              (status = 403, description = "`not_member` of `room_id`"),
              (status = 429, description = "`rate_limited`")))]
pub async fn search(State(app): State<App>, auth: AuthUser, Query(p): Query<SearchParams>) -> ApiResult<Json<Found>> {
    let limit = p.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError {
            field: Some("limit"),
            ..ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}"))
        });
    }
    let query = SearchQuery::parse(&p.q)?;
    Ok(Json(search::search(&app, auth.user.id, &query, p.room_id, p.before, limit).await?))
}
