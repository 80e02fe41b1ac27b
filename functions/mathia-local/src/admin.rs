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
  mathia-local admin credit --workspace <id> --amount-cents <n> --reason <text> [--idempotency-key <k>]
                                                 top up a wallet, once per key (by default the key is
                                                 derived from the workspace, amount and reason)
  mathia-local admin credit <workspace> <cents> [reason]   top up a wallet (a new key each time)
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
        ["credit", flags @ ..] if flags.first().is_some_and(|f| f.starts_with("--")) => {
            let (workspace, cents, reason, key) = credit_flags(flags)?;
            match wallet::apply(&db, workspace, Kind::Credit, cents, &key, &reason, None).await? {
                Moved::New(e) => Ok(format!(
                    "credit {} cents; balance {} cents (entry {})",
                    e.amount_cents, e.balance_after_cents, e.id
                )),
                Moved::Replayed(e) => Ok(format!(
                    "already credited under this key: {} cents (entry {}); nothing moved",
                    e.amount_cents, e.id
                )),
                Moved::KeyReused(e) => bail!("this key was used for a different movement (entry {})", e.id),
                Moved::NoWallet => bail!("no workspace {workspace}"),
                Moved::InsufficientFunds { .. } => bail!("a credit cannot overdraw"),
            }
        }
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

/// `admin credit --workspace ID --amount-cents N --reason R [--idempotency-key K]`, checked:
/// the workspace, the amount, the reason and the ledger key. Without `--idempotency-key` the key
/// is derived from the other three, so running the same command again (a retry, a double
/// paste) credits nothing more.
fn credit_flags(flags: &[&str]) -> anyhow::Result<(Uuid, i64, String, String)> {
    let (mut workspace, mut cents, mut reason, mut key) = (None, None, None, None);
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        let slot = match *flag {
            "--workspace" => &mut workspace,
            "--amount-cents" => &mut cents,
            "--reason" => &mut reason,
            "--idempotency-key" => &mut key,
            other => bail!("unknown option {other}\n{USAGE}"),
        };
        *slot = Some(*value);
    }
    let workspace: Uuid =
        workspace.context("--workspace is required")?.parse().context("the workspace must be an id")?;
    let cents: i64 =
        cents.context("--amount-cents is required")?.parse().context("the amount must be a whole number of cents")?;
    if !(1..=100_000_000).contains(&cents) {
        bail!("the amount must be between 1 and 100000000 cents");
    }
    let reason = reason.context("--reason is required")?.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        bail!("the reason must be 1 to 200 characters");
    }
    let key = match key.map(str::trim) {
        Some("") => bail!("the idempotency key must not be empty"),
        Some(k) if k.len() > 190 => bail!("the idempotency key must be at most 190 characters"),
        Some(k) => format!("admin:{k}"),
        None => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{workspace}\n{cents}\n{reason}"));
            format!("admin:auto:{}", hex(&digest[..16]))
        }
    };
    Ok((workspace, cents, reason.to_owned(), key))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
