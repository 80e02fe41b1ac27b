//! `mathia-local admin …`: the operator's commands (what the original did through its admin
//! site). They talk to the same database with the same library code as the server.

use anyhow::{Context, bail};
use mathia::{
    App, Config,
    adapters::postgres::{
        self, users,
        wallet::{self, Kind, Moved},
        workspaces,
    },
};
use uuid::Uuid;

pub const USAGE: &str = "usage:
  mathia-local                                   run Mathia (HTTP, WebSocket, workers)
  mathia-local emulate                           run the Lambda functions behind emulated API
                                                 Gateway, SQS and EventBridge (AWS_ENDPOINT_URL)
  mathia-local admin users                       list users
  mathia-local admin workspaces                  list workspaces with members and balance
  mathia-local admin credit <workspace> <cents> [reason]   top up a wallet
  mathia-local admin debit <workspace> <cents> [reason]    take money out of a wallet
  mathia-local admin rotate-key <room>           add a new key version for a room
  mathia-local admin migrate                     create and migrate the database";

/// Runs one admin command and returns what to print.
pub async fn run(config: Config, args: &[String]) -> anyhow::Result<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let db = postgres::connect(&config.database_url).await?;
    match args.as_slice() {
        ["migrate"] => Ok("database is migrated".into()),
        ["users"] => Ok(users::all(&db)
            .await?
            .iter()
            .map(|(u, step)| format!("{}  {}  {}  onboarding:{step}", u.id, u.email, u.display_name))
            .collect::<Vec<_>>()
            .join("\n")),
        ["workspaces"] => Ok(workspaces::all(&db)
            .await?
            .iter()
            .map(|(w, members, balance)| {
                format!("{}  {}  owner:{}  members:{members}  balance:{balance}", w.id, w.name, w.owner_id)
            })
            .collect::<Vec<_>>()
            .join("\n")),
        [op @ ("credit" | "debit"), workspace, cents, reason @ ..] => {
            let workspace: Uuid = workspace.parse().context("the workspace must be an id")?;
            let cents: i64 = cents.parse().context("the amount must be a whole number of cents")?;
            if cents <= 0 {
                bail!("the amount must be positive");
            }
            let kind = if *op == "credit" { Kind::Credit } else { Kind::Debit };
            let reason = if reason.is_empty() { format!("admin {op}") } else { reason.join(" ") };
            let key = format!("admin:{}", Uuid::new_v4());
            match wallet::apply(&db, workspace, kind, cents, &key, &reason, None).await? {
                Moved::New(e) => Ok(format!(
                    "{} {} cents; balance {} cents (entry {})",
                    e.kind, e.amount_cents, e.balance_after_cents, e.id
                )),
                Moved::InsufficientFunds { balance_cents } => {
                    bail!("insufficient funds: the balance is {balance_cents} cents")
                }
                Moved::NoWallet => bail!("no workspace {workspace}"),
                Moved::Replayed(_) | Moved::KeyReused(_) => {
                    bail!("idempotency key collision; try again")
                }
            }
        }
        ["rotate-key", room] => {
            let room: Uuid = room.parse().context("the room must be an id")?;
            let app = App::builder(config, db).build()?;
            let version = app.keyring.rotate(room).await?;
            Ok(format!("room {room} now encrypts with key version {version}"))
        }
        _ => bail!("{USAGE}"),
    }
}
