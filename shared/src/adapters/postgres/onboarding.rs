//! Onboarding state, profiles and goal profiles (what the assistant reads about a person).

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Where a person is in onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Profile,
    Goals,
    Workspace,
    Done,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Goals => "goals",
            Self::Workspace => "workspace",
            Self::Done => "done",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "goals" => Self::Goals,
            "workspace" => Self::Workspace,
            "done" => Self::Done,
            _ => Self::Profile,
        }
    }

    pub fn next(self) -> Self {
        match self {
            Self::Profile => Self::Goals,
            Self::Goals => Self::Workspace,
            Self::Workspace | Self::Done => Self::Done,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Profile {
    pub display_name: String,
    pub timezone: String,
    pub role: Option<String>,
    pub bio: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct GoalProfile {
    pub goals: Vec<String>,
    pub focus: Option<String>,
    pub tone: Option<String>,
}

pub async fn step(db: &PgPool, user_id: Uuid) -> Result<Step, sqlx::Error> {
    let s: String =
        sqlx::query_scalar("SELECT onboarding_step FROM users WHERE id = $1").bind(user_id).fetch_one(db).await?;
    Ok(Step::parse(&s))
}

/// The step, with the person's row locked until the transaction ends: steps that must happen
/// once (creating the workspace) check and advance under it.
pub async fn step_for_update(tx: &mut Transaction<'_, Postgres>, user_id: Uuid) -> Result<Step, sqlx::Error> {
    let s: String = sqlx::query_scalar("SELECT onboarding_step FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Step::parse(&s))
}

/// Moves the step forward from `from` (never backwards: re-saving an earlier step later, from
/// Settings, keeps the person where they are).
pub async fn advance(tx: &mut Transaction<'_, Postgres>, user_id: Uuid, from: Step) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET onboarding_step = $3 WHERE id = $1 AND onboarding_step = $2")
        .bind(user_id)
        .bind(from.as_str())
        .bind(from.next().as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn profile(db: &PgPool, user_id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.display_name, p.timezone, p.role, p.bio FROM profiles p JOIN users u ON u.id = p.user_id WHERE p.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await
}

pub async fn save_profile(tx: &mut Transaction<'_, Postgres>, user_id: Uuid, p: &Profile) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET display_name = $2 WHERE id = $1")
        .bind(user_id)
        .bind(&p.display_name)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO profiles (user_id, timezone, role, bio) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET timezone = $2, role = $3, bio = $4, updated_at = now()",
    )
    .bind(user_id)
    .bind(&p.timezone)
    .bind(&p.role)
    .bind(&p.bio)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn goals(db: &PgPool, user_id: Uuid) -> Result<Option<GoalProfile>, sqlx::Error> {
    sqlx::query_as("SELECT goals, focus, tone FROM goal_profiles WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await
}

pub async fn save_goals(tx: &mut Transaction<'_, Postgres>, user_id: Uuid, g: &GoalProfile) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO goal_profiles (user_id, goals, focus, tone) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET goals = $2, focus = $3, tone = $4, updated_at = now()",
    )
    .bind(user_id)
    .bind(&g.goals)
    .bind(&g.focus)
    .bind(&g.tone)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The user's timezone (UTC until they say otherwise).
pub async fn timezone(db: &PgPool, user_id: Uuid) -> Result<String, sqlx::Error> {
    let tz: Option<String> =
        sqlx::query_scalar("SELECT timezone FROM profiles WHERE user_id = $1").bind(user_id).fetch_optional(db).await?;
    Ok(tz.unwrap_or_else(|| "UTC".into()))
}
