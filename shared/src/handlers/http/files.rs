//! Files: declare an upload, PUT the bytes to the short-lived URL, then `file_message` on the
//! socket. Members fetch a short-lived download link from `/api/files/{id}`.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Bytes, Json, Path, Query},
};
use crate::{
    adapters::postgres::files as file_rows,
    app::App,
    domain::Invalid,
    files::{MAX_BYTES, URL_TTL, extension, sanitize_name},
};

#[derive(Deserialize)]
pub struct Declare {
    name: String,
    content_type: String,
    size: i64,
}

fn too_large() -> ApiError {
    ApiError {
        field: Some("size"),
        ..ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "files are at most 5 MB")
    }
}

#[utoipa::path(post, path = "/api/rooms/{id}/uploads", tag = "files", params(("id" = String, Path, description = "room id")),
    responses((status = 201, description = "`{file_id, upload_url, expires_in_s}`"), (status = 400, description = "a type that cannot be shared"),
              (status = 413, description = "over 5 MB")))]
pub async fn declare(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Json(body): Json<Declare>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_onboarded()?;
    crate::access::member_room(&app, room_id, auth.user.id).await?;
    crate::access::require_unmuted(&app, room_id, auth.user.id).await?;
    if body.size > MAX_BYTES {
        return Err(too_large());
    }
    if body.size < 1 {
        return Err(Invalid::new("size", "the file is empty").into());
    }
    let name = sanitize_name(&body.name);
    if extension(&name).is_none() {
        return Err(
            Invalid::new("name", "only .txt, .pdf, .doc, .docx, .jpg, .jpeg and .png files can be shared").into()
        );
    }
    let declared_type = body.content_type.trim().chars().take(100).collect::<String>();
    let file_id =
        file_rows::create(&app.db, room_id, auth.user.id, &name, &declared_type, body.size, app.clock.now()).await?;
    let upload_url = app.files.upload_url(file_id, room_id, &declared_type, body.size).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "file_id": file_id, "upload_url": upload_url, "expires_in_s": URL_TTL.as_secs() })),
    ))
}

#[derive(Deserialize)]
pub struct Signed {
    expires: i64,
    sig: String,
}

fn link_refused(why: &str) -> ApiError {
    ApiError::forbidden("link_refused", format!("{why}; ask for a new link"))
}

/// The local store's upload URL (S3 takes uploads itself).
pub async fn put_upload(
    State(app): State<App>,
    Path(file_id): Path<Uuid>,
    Query(q): Query<Signed>,
    Bytes(body): Bytes,
) -> ApiResult<StatusCode> {
    let local = app.local_files.clone().ok_or_else(|| ApiError::not_found("not_found", "no such endpoint"))?;
    local.verify("put", file_id, q.expires, &q.sig).map_err(link_refused)?;
    if body.len() as i64 > MAX_BYTES {
        return Err(too_large());
    }
    let file = file_rows::get(&app.db, file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("file_not_found", "no such upload"))?;
    if file.status != "pending" {
        return Err(ApiError::conflict("already_uploaded", "this upload is finished"));
    }
    local.write(file_id, file.room_id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/files/{id}", tag = "files", params(("id" = String, Path, description = "file id")),
    responses((status = 200, description = "`{url}` with `Accept: application/json`"), (status = 302, description = "to a short-lived download link"),
              (status = 403, description = "`not_member`")))]
pub async fn link(
    State(app): State<App>,
    auth: AuthUser,
    Path(file_id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let file = file_rows::get(&app.db, file_id)
        .await?
        .filter(|f| f.status == "ready")
        .ok_or_else(|| ApiError::not_found("file_not_found", "no such file"))?;
    crate::access::require_member(&app, file.room_id, auth.user.id).await?;
    let content_type = file.content_type.as_deref().unwrap_or("application/octet-stream");
    let url = app.files.download_url(file_id, &file.name, content_type).await?;
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    Ok(if wants_json { axum::Json(json!({ "url": url })).into_response() } else { Redirect::to(&url).into_response() })
}

/// The local store's download URL.
pub async fn download(
    State(app): State<App>,
    Path(file_id): Path<Uuid>,
    Query(q): Query<Signed>,
) -> ApiResult<Response> {
    let local = app.local_files.clone().ok_or_else(|| ApiError::not_found("not_found", "no such endpoint"))?;
    local.verify("get", file_id, q.expires, &q.sig).map_err(link_refused)?;
    let file = file_rows::get(&app.db, file_id)
        .await?
        .filter(|f| f.status == "ready")
        .ok_or_else(|| ApiError::not_found("file_not_found", "no such file"))?;
    let bytes = local.read_accepted(file_id, file.room_id).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = file.content_type.unwrap_or_else(|| "application/octet-stream".into());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let ascii: String = file.name.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", ascii.replace('"', "_"))) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(response)
}
