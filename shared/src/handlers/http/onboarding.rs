//! Onboarding: profile → goals → workspace, each validated, saved as it is done, resumable.
//! `GET /api/me` and every step answer the same state.

use std::str::FromStr;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    auth::ClientAddress,
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json},
};
use crate::{
    adapters::postgres::{
        invites::{self, Accepted},
        onboarding::{self, GoalProfile, Profile, Step},
        rooms, users, wallet, workspaces,
    },
    app::App,
    chat::presence,
    domain::Role,
    domain::{DisplayName, Invalid, RoomName, User, Visibility},
    limits, sessions,
};

/// The onboarding state: who, what they told us, where they are.
pub async fn state(app: &App, user: &User) -> ApiResult<Value> {
    let (step, profile, goals, workspaces) = tokio::try_join!(
        onboarding::step(&app.db, user.id),
        onboarding::profile(&app.db, user.id),
        onboarding::goals(&app.db, user.id),
        users::workspaces_of(&app.db, user.id),
    )?;
    let user = users::by_id(&app.db, user.id).await?.unwrap_or_else(|| user.clone());
    Ok(json!({
        "user": user,
        "profile": profile,
        "goals": goals,
        "workspaces": workspaces,
        "onboarding": { "step": step.as_str(), "completed": step == Step::Done },
    }))
}

#[utoipa::path(get, path = "/api/me", tag = "auth",
    responses((status = 200, description = "`{user, profile, goals, workspaces, onboarding}`")))]
pub async fn me(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Value>> {
    Ok(Json(state(&app, &auth.user).await?))
}

fn optional_text(field: &'static str, value: Option<String>, max: usize) -> Result<Option<String>, Invalid> {
    let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    Ok(Some(v))
}

async fn require_step(app: &App, user_id: Uuid, at_least: Step, what: &str) -> ApiResult<Step> {
    let step = onboarding::step(&app.db, user_id).await?;
    if step < at_least {
        return Err(ApiError::conflict(
            "onboarding_out_of_order",
            format!("{what} comes later: finish the {} step first", step.as_str()),
        ));
    }
    Ok(step)
}

#[derive(Deserialize)]
pub struct ProfileBody {
    display_name: String,
    timezone: String,
    role: Option<String>,
    bio: Option<String>,
}

#[utoipa::path(put, path = "/api/onboarding/profile", tag = "onboarding",
    responses((status = 200, description = "the onboarding state"), (status = 400, description = "a field is invalid"),
              (status = 429, description = "`rate_limited`: too many name changes this minute")))]
pub async fn profile(State(app): State<App>, auth: AuthUser, Json(body): Json<ProfileBody>) -> ApiResult<Json<Value>> {
    let display_name = DisplayName::parse(&body.display_name)?;
    let timezone = body.timezone.trim();
    if chrono_tz::Tz::from_str(timezone).is_err() {
        return Err(
            Invalid::new("timezone", "must be an IANA timezone name, like Europe/Paris or America/New_York").into()
        );
    }
    let profile = Profile {
        display_name: display_name.into_inner(),
        timezone: timezone.to_owned(),
        role: optional_text("role", body.role, 80)?,
        bio: optional_text("bio", body.bio, 500)?,
    };
    // A new name is announced to the rooms the person's sockets are in: a budget of its own.
    let renamed = profile.display_name != auth.user.display_name;
    if renamed {
        limits::limit_per_minute(
            &app,
            "rename",
            "name changes",
            auth.user.id,
            app.clock.now(),
            presence::RENAMES_PER_MINUTE,
        )
        .await?;
    }
    let mut tx = app.db.begin().await?;
    onboarding::save_profile(&mut tx, auth.user.id, &profile).await?;
    onboarding::advance(&mut tx, auth.user.id, Step::Profile).await?;
    tx.commit().await?;
    // Whether or not the name changed from what this request saw: another saving the profile at
    // the same moment may have read the name this one replaced.
    sessions::user_changed(&app, auth.user.id);
    if renamed {
        presence::renamed(&app, auth.user.id, &profile.display_name).await;
    }
    Ok(Json(state(&app, &auth.user).await?))
}

#[derive(Deserialize)]
pub struct GoalsBody {
    goals: Vec<String>,
    focus: Option<String>,
    tone: Option<String>,
}

#[utoipa::path(put, path = "/api/onboarding/goals", tag = "onboarding",
    responses((status = 200, description = "the onboarding state"), (status = 400, description = "a field is invalid"),
              (status = 409, description = "`onboarding_out_of_order`")))]
pub async fn goals(State(app): State<App>, auth: AuthUser, Json(body): Json<GoalsBody>) -> ApiResult<Json<Value>> {
    require_step(&app, auth.user.id, Step::Goals, "goals").await?;
    let goals: Vec<String> = body.goals.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
    if goals.is_empty() {
        return Err(Invalid::new("goals", "name at least one goal").into());
    }
    if goals.len() > 10 {
        return Err(Invalid::new("goals", "at most 10 goals").into());
    }
    if goals.iter().any(|g| g.chars().count() > 200) {
        return Err(Invalid::new("goals", "each goal is at most 200 characters").into());
    }
    let profile = GoalProfile {
        goals,
        focus: optional_text("focus", body.focus, 200)?,
        tone: optional_text("tone", body.tone, 40)?,
    };
    let mut tx = app.db.begin().await?;
    onboarding::save_goals(&mut tx, auth.user.id, &profile).await?;
    onboarding::advance(&mut tx, auth.user.id, Step::Goals).await?;
    tx.commit().await?;
    sessions::user_changed(&app, auth.user.id);
    Ok(Json(state(&app, &auth.user).await?))
}

#[derive(Deserialize)]
pub struct WorkspaceBody {
    name: Option<String>,
    invite_code: Option<String>,
}

#[utoipa::path(put, path = "/api/onboarding/workspace", tag = "onboarding",
    responses((status = 200, description = "the onboarding state with `workspace`"), (status = 400, description = "a field is invalid"),
              (status = 404, description = "`invite_not_found`"), (status = 409, description = "`onboarding_out_of_order`")))]
pub async fn workspace(
    State(app): State<App>,
    auth: AuthUser,
    address: ClientAddress,
    Json(body): Json<WorkspaceBody>,
) -> ApiResult<Json<Value>> {
    if require_step(&app, auth.user.id, Step::Workspace, "the workspace").await? == Step::Done {
        return Err(already_done());
    }
    let name = body.name.filter(|n| !n.trim().is_empty());
    let code = body.invite_code.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    let (workspace_id, role) = match (name, code) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(
                Invalid::new("name", "give a workspace name to create one, or an invite code to join one").into()
            );
        }
        (Some(name), None) => {
            let name = RoomName::parse(&name).map_err(|e| Invalid::new("name", e.reason))?;
            (create_workspace(&app, &auth.user, name.as_str(), address.ip()).await?, Role::Owner)
        }
        (None, Some(code)) => {
            let field = |e: ApiError| ApiError { field: Some("invite_code"), ..e };
            let room_id = match invites::accept(&app.db, &code, auth.user.id, app.clock.now()).await? {
                Accepted::Room(room_id) => room_id,
                Accepted::Unknown => {
                    return Err(field(ApiError::not_found("invite_not_found", "no invite has that code")));
                }
                Accepted::Expired => {
                    return Err(field(ApiError::conflict("invite_expired", "this invite has expired")));
                }
                Accepted::UsedUp => {
                    return Err(field(ApiError::conflict("invite_used_up", "this invite has been used up")));
                }
                Accepted::AlreadyUsed => {
                    return Err(field(ApiError::conflict("invite_already_used", "you have used this invite already")));
                }
            };
            let room = rooms::get(&app.db, room_id).await?.ok_or_else(ApiError::internal)?;
            (room.workspace_id, Role::Member)
        }
    };
    let mut tx = app.db.begin().await?;
    onboarding::advance(&mut tx, auth.user.id, Step::Workspace).await?;
    tx.commit().await?;
    sessions::user_changed(&app, auth.user.id);
    let mut answer = state(&app, &auth.user).await?;
    let name = answer["workspaces"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["id"] == workspace_id.to_string()))
        .map(|w| w["name"].clone())
        .unwrap_or(Value::Null);
    answer["workspace"] = json!({ "id": workspace_id, "name": name, "role": role.as_str() });
    Ok(Json(answer))
}

fn already_done() -> ApiError {
    ApiError::conflict(
        "onboarding_complete",
        "onboarding is done: create rooms in your workspace, or accept invites to join others",
    )
}

/// Onboarding's workspace: its owner, its wallet (with the welcome credit, once per person and
/// within its address's day, `wallet::welcome_in`), a first room, and the step moved
/// to done — in one transaction that holds the person's row, so the step sent twice (or replayed
/// later) creates nothing more.
pub async fn create_workspace(app: &App, owner: &User, name: &str, address: Option<&str>) -> ApiResult<Uuid> {
    let mut tx = app.db.begin().await?;
    if onboarding::step_for_update(&mut tx, owner.id).await? != Step::Workspace {
        return Err(already_done());
    }
    let workspace_id = workspaces::create(&mut tx, name, owner.id).await?;
    crate::chat::rooms::create_in(app, &mut tx, workspace_id, "general", owner.id, Visibility::Public).await?;
    let welcome = wallet::Welcome {
        user_id: owner.id,
        workspace_id,
        cents: app.config.welcome_credit_cents,
        address: address.unwrap_or("unknown"),
        per_address: app.config.welcome_credits_per_address_per_day,
        now: app.clock.now(),
    };
    let welcomed = wallet::welcome_in(&mut tx, welcome).await?;
    if welcomed == wallet::Welcomed::AddressSpent {
        tracing::warn!("welcome credit withheld: this address had its day's credits");
    }
    onboarding::advance(&mut tx, owner.id, Step::Workspace).await?;
    tx.commit().await?;
    sessions::user_changed(app, owner.id);
    tracing::info!(%workspace_id, ?welcomed, "workspace created");
    Ok(workspace_id)
}
