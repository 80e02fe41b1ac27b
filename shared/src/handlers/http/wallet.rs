//! The workspace wallet: balance and ledger for members, debits for owners, credits for the
//! platform operator only (the `X-Operator-Token` header matching `MATHIA_OPERATOR_TOKEN`;
//! with none configured nobody credits over HTTP — `mathia-local admin credit` does).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Query},
};
use crate::{
    access,
    adapters::postgres::{
        users,
        wallet::{self, Kind, Moved},
    },
    app::App,
    domain::Invalid,
    domain::Role,
};

/// The largest single movement: a million dollars.
const MAX_AMOUNT_CENTS: i64 = 100_000_000;

#[derive(Deserialize)]
pub struct WalletQuery {
    workspace_id: Option<Uuid>,
    limit: Option<i64>,
}

/// The workspace asked for (or the user's first), if the user is in it, and their role.
async fn member_workspace(app: &App, user_id: Uuid, asked: Option<Uuid>) -> ApiResult<(Uuid, Role)> {
    let workspace_id = match asked {
        Some(id) => id,
        None => users::default_workspace(&app.db, user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("no_workspace", "you are not in any workspace yet"))?,
    };
    Ok((workspace_id, crate::access::workspace_role(app, workspace_id, user_id).await?))
}

#[utoipa::path(get, path = "/api/wallet", tag = "wallet",
    params(("workspace_id" = Option<String>, Query, description = "defaults to your first workspace")),
    responses((status = 200, description = "`{workspace_id, balance_cents, currency}`"), (status = 403, description = "`not_workspace_member`")))]
pub async fn balance(State(app): State<App>, auth: AuthUser, Query(q): Query<WalletQuery>) -> ApiResult<Json<Value>> {
    let (workspace_id, _) = member_workspace(&app, auth.user.id, q.workspace_id).await?;
    let w = wallet::get(&app.db, workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no_wallet", "this workspace has no wallet"))?;
    Ok(Json(json!(w)))
}

#[utoipa::path(get, path = "/api/wallet/transactions", tag = "wallet",
    params(("workspace_id" = Option<String>, Query, description = "defaults to your first workspace"),
           ("limit" = Option<i64>, Query, description = "1..500, default 100")),
    responses((status = 200, description = "ledger entries, newest first"), (status = 403, description = "`not_workspace_member`")))]
pub async fn transactions(
    State(app): State<App>,
    auth: AuthUser,
    Query(q): Query<WalletQuery>,
) -> ApiResult<Json<Value>> {
    let (workspace_id, _) = member_workspace(&app, auth.user.id, q.workspace_id).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Invalid::new("limit", "must be between 1 and 500").into());
    }
    Ok(Json(json!(wallet::entries(&app.db, workspace_id, limit).await?)))
}

#[derive(Deserialize)]
pub struct MoveBody {
    workspace_id: Uuid,
    amount_cents: i64,
    reason: String,
    idempotency_key: String,
}

/// The header that carries the operator's credential.
pub const OPERATOR_HEADER: &str = "x-operator-token";

/// Whether the request carries the configured operator token. Both sides are hashed first, so
/// the comparison takes the same time whatever the length or the first differing byte.
fn is_operator(app: &App, headers: &HeaderMap) -> bool {
    let (Some(expected), Some(given)) = (app.config.operator_token.as_deref(), headers.get(OPERATOR_HEADER)) else {
        return false;
    };
    let (a, b) = (Sha256::digest(expected.as_bytes()), Sha256::digest(given.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 && !expected.is_empty()
}

/// The body's amount, reason and key, checked.
fn checked(body: &MoveBody) -> ApiResult<(&str, &str)> {
    if !(1..=MAX_AMOUNT_CENTS).contains(&body.amount_cents) {
        return Err(Invalid::new("amount_cents", format!("must be between 1 and {MAX_AMOUNT_CENTS}")).into());
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Invalid::new("reason", "must be 1 to 200 characters").into());
    }
    let key = body.idempotency_key.trim();
    if key.is_empty() || key.len() > 200 {
        return Err(Invalid::new("idempotency_key", "must be 1 to 200 characters").into());
    }
    Ok((reason, key))
}

async fn movement(
    app: &App,
    workspace_id: Uuid,
    body: &MoveBody,
    kind: Kind,
    by: Option<Uuid>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (reason, key) = checked(body)?;
    match wallet::apply(&app.db, workspace_id, kind, body.amount_cents, key, reason, by).await? {
        Moved::New(entry) => {
            tracing::info!(%workspace_id, kind = entry.kind, amount = entry.amount_cents, operator = by.is_none(), "wallet movement");
            Ok((StatusCode::CREATED, Json(json!(entry))))
        }
        Moved::Replayed(entry) => Ok((StatusCode::OK, Json(json!(entry)))),
        Moved::KeyReused(_) => Err(ApiError {
            field: Some("idempotency_key"),
            ..ApiError::conflict("idempotency_key_reused", "that idempotency key was used for a different movement")
        }),
        Moved::InsufficientFunds { balance_cents } => Err(ApiError::conflict(
            "insufficient_funds",
            format!("the balance is {balance_cents} cents; this debit would take it below zero"),
        )),
        Moved::NoWallet => Err(ApiError::not_found("no_wallet", "this workspace has no wallet")),
    }
}

#[utoipa::path(post, path = "/api/wallet/credit", tag = "wallet",
    responses((status = 201, description = "the ledger entry"), (status = 200, description = "the entry of an earlier request with this key"),
              (status = 403, description = "`operator_only`: the `X-Operator-Token` header is missing or wrong, or no operator token is configured"),
              (status = 404, description = "`no_wallet`")))]
pub async fn credit(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<MoveBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !is_operator(&app, &headers) {
        return Err(ApiError::forbidden("operator_only", "credits are added by the platform operator"));
    }
    movement(&app, body.workspace_id, &body, Kind::Credit, None).await
}

#[utoipa::path(post, path = "/api/wallet/debit", tag = "wallet",
    responses((status = 201, description = "the ledger entry"), (status = 200, description = "the entry of an earlier request with this key"),
              (status = 403, description = "`owner_only`"), (status = 409, description = "`insufficient_funds`")))]
pub async fn debit(
    State(app): State<App>,
    auth: AuthUser,
    Json(body): Json<MoveBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (workspace_id, role) = member_workspace(&app, auth.user.id, Some(body.workspace_id)).await?;
    if !access::may_move_money(role) {
        return Err(ApiError::forbidden("owner_only", "only the workspace's owner can move money"));
    }
    movement(&app, workspace_id, &body, Kind::Debit, Some(auth.user.id)).await
}
