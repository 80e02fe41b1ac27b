//! The wallet: never lost, doubled or driven below zero, whatever the concurrency or retries.

use futures::future::join_all;
use mathia::adapters::postgres::wallet::{self, Kind, Moved};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

const OPERATOR: &str = "operator-secret-for-tests";

/// `POST /api/wallet/credit` with the operator's header (when given), and no user token.
async fn operator_credit(t: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = t.http.post(t.url("/api/wallet/credit")).json(&body);
    if let Some(token) = token {
        req = req.header("x-operator-token", token);
    }
    req.send().await.unwrap()
}

async fn workspace_of(t: &TestApp, user: &TestUser) -> Uuid {
    let me: Value = t.get(Some(&user.token), "/api/me").await.json().await.unwrap();
    me["workspaces"][0]["id"].as_str().unwrap().parse().unwrap()
}

async fn balance(t: &TestApp, workspace: Uuid) -> i64 {
    sqlx::query_scalar("SELECT balance_cents FROM wallets WHERE workspace_id = $1")
        .bind(workspace)
        .fetch_one(&t.db().await)
        .await
        .unwrap()
}

async fn ledger_sum(t: &TestApp, workspace: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(CASE kind WHEN 'credit' THEN amount_cents ELSE -amount_cents END), 0)::bigint
         FROM ledger_entries WHERE workspace_id = $1",
    )
    .bind(workspace)
    .fetch_one(&t.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_hundred_concurrent_debits_against_fifty_cents_spend_exactly_fifty() {
    let t = TestApp::spawn_with(|c| c.welcome_credit_cents = 50).await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    assert_eq!(balance(&t, ws).await, 50);

    let results = join_all((0..100).map(|i| {
        let db = t.local.app.db.clone();
        async move { wallet::charge(&db, ws, 1, &format!("debit-{i}"), "load test").await.unwrap() }
    }))
    .await;
    let ok = results.iter().filter(|r| matches!(r, Moved::New(_))).count();
    let refused = results.iter().filter(|r| matches!(r, Moved::InsufficientFunds { .. })).count();
    assert_eq!((ok, refused), (50, 50));
    assert_eq!(balance(&t, ws).await, 0);
    assert_eq!(ledger_sum(&t, ws).await, 0, "the ledger sums to the balance");
    // Nothing negative at any point: every entry's balance-after is within bounds and the
    // debits' balances-after are exactly 49..=0, each once.
    let mut after: Vec<i64> =
        sqlx::query_scalar("SELECT balance_after_cents FROM ledger_entries WHERE workspace_id = $1 AND kind = 'debit'")
            .bind(ws)
            .fetch_all(&t.db().await)
            .await
            .unwrap();
    after.sort();
    assert_eq!(after, (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_same_idempotency_key_moves_money_once_even_concurrently() {
    let t = TestApp::spawn_with(|c| c.operator_token = Some(OPERATOR.into())).await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let start = balance(&t, ws).await;

    let body = json!({"workspace_id": ws, "amount_cents": 250, "reason": "top up", "idempotency_key": "topup-1"});
    let first = operator_credit(&t, Some(OPERATOR), body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = operator_credit(&t, Some(OPERATOR), body.clone()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the replay answers the original entry");

    // Twenty concurrent requests with one key.
    let same = json!({"workspace_id": ws, "amount_cents": 7, "reason": "race", "idempotency_key": "race-1"});
    let answers = join_all((0..20).map(|_| t.post(Some(&ana.token), "/api/wallet/debit", same.clone()))).await;
    let mut ids = std::collections::HashSet::new();
    for res in answers {
        assert!(res.status() == 201 || res.status() == 200);
        ids.insert(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one entry, answered to everyone");
    assert_eq!(balance(&t, ws).await, start + 250 - 7);
    assert_eq!(ledger_sum(&t, ws).await, balance(&t, ws).await);

    // The library's charge, twice with one key: one entry.
    let a = wallet::charge(&t.local.app.db, ws, 3, "job-42", "AI reply").await.unwrap();
    let b = wallet::charge(&t.local.app.db, ws, 3, "job-42", "AI reply").await.unwrap();
    let (Moved::New(a), Moved::Replayed(b)) = (a, b) else { panic!("charged twice") };
    assert_eq!(a, b);
    // A key reused for a different movement is refused.
    let reused = t
        .post(
            Some(&ana.token),
            "/api/wallet/debit",
            json!({"workspace_id": ws, "amount_cents": 9, "reason": "x", "idempotency_key": "topup-1"}),
        )
        .await;
    assert_eq!(reused.status(), 409);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"]["code"], "idempotency_key_reused");
    let replayed = wallet::apply(&t.local.app.db, ws, Kind::Credit, 250, "topup-1", "top up", None).await.unwrap();
    let Moved::Replayed(entry) = replayed else { panic!("replayed") };
    assert_eq!(entry.id.to_string(), first["id"].as_str().unwrap());
}

#[tokio::test]
async fn only_owners_move_money_and_only_members_see_the_wallet() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let room = t.create_room(&ana, "team").await;
    let ben = t.register_only("Ben").await;
    let code = t.invite(&ana, room.id, json!({})).await;
    t.onboard(&ben, json!({"invite_code": code})).await;
    let eve = t.register("Eve").await;

    let wallet: Value = t.get(Some(&ben.token), &format!("/api/wallet?workspace_id={ws}")).await.json().await.unwrap();
    assert_eq!(wallet["balance_cents"], 500);
    assert_eq!(wallet["currency"], "USD");
    let ledger: Value =
        t.get(Some(&ben.token), &format!("/api/wallet/transactions?workspace_id={ws}")).await.json().await.unwrap();
    assert_eq!(ledger[0]["reason"], "welcome credit");

    for path in ["/api/wallet/credit", "/api/wallet/debit"] {
        let res = t
            .post(
                Some(&ben.token),
                path,
                json!({"workspace_id": ws, "amount_cents": 1, "reason": "mine", "idempotency_key": "k"}),
            )
            .await;
        assert_eq!(res.status(), 403, "{path}");
        let code = if path.ends_with("credit") { "operator_only" } else { "owner_only" };
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], code);
        let res = t
            .post(
                Some(&eve.token),
                path,
                json!({"workspace_id": ws, "amount_cents": 1, "reason": "mine", "idempotency_key": "k"}),
            )
            .await;
        assert_eq!(res.status(), 403);
    }
    for path in [format!("/api/wallet?workspace_id={ws}"), format!("/api/wallet/transactions?workspace_id={ws}")] {
        let res = t.get(Some(&eve.token), &path).await;
        assert_eq!(res.status(), 403, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "not_workspace_member");
    }
    let over = t
        .post(
            Some(&ana.token),
            "/api/wallet/debit",
            json!({"workspace_id": ws, "amount_cents": 501, "reason": "too much", "idempotency_key": "big"}),
        )
        .await;
    assert_eq!(over.status(), 409);
    assert_eq!(over.json::<Value>().await.unwrap()["error"]["code"], "insufficient_funds");
    for bad in [
        json!({"workspace_id": ws, "amount_cents": 0, "reason": "r", "idempotency_key": "z"}),
        json!({"workspace_id": ws, "amount_cents": 5, "reason": " ", "idempotency_key": "z"}),
    ] {
        assert_eq!(t.post(Some(&ana.token), "/api/wallet/debit", bad).await.status(), 400);
    }
    assert_eq!(balance(&t, ws).await, 500, "nothing moved");
    assert_eq!(ledger_sum(&t, ws).await, 500);
}

#[tokio::test]
async fn the_admin_command_tops_up_lists_and_rotates() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let room = t.create_room(&ana, "ops").await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mathia-local"))
            .arg("admin")
            .args(args)
            .env("DATABASE_URL", &t.local.app.config.database_url)
            .env(
                "MATHIA_MASTER_KEY",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, t.local.app.config.master_key),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&["credit", &ws.to_string(), "1000", "invoice", "7"]);
    assert!(ok, "{out}");
    assert!(out.contains("balance 1500"), "{out}");
    assert_eq!(balance(&t, ws).await, 1500);
    let (ok, out) = run(&["debit", &ws.to_string(), "99999"]);
    assert!(!ok && out.contains("insufficient funds"), "{out}");
    let (ok, out) = run(&["users"]);
    assert!(ok && out.contains(&ana.email), "{out}");
    let (ok, out) = run(&["workspaces"]);
    assert!(ok && out.contains(&ws.to_string()) && out.contains("balance:1500"), "{out}");
    let (ok, out) = run(&["rotate-key", &room.id.to_string()]);
    assert!(ok && out.contains("key version 2"), "{out}");
    let (ok, _) = run(&["bogus"]);
    assert!(!ok);
}

#[tokio::test]
async fn owners_cannot_credit_themselves_and_only_the_operator_token_can() {
    // No operator token configured: nobody credits over HTTP, owner or not.
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let huge = json!({"workspace_id": ws, "amount_cents": 100_000_000, "reason": "free money", "idempotency_key": "a"});
    for key in ["a", "b"] {
        let body =
            json!({"workspace_id": ws, "amount_cents": 100_000_000, "reason": "free money", "idempotency_key": key});
        let res = t.post(Some(&ana.token), "/api/wallet/credit", body).await;
        assert_eq!(res.status(), 403);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "operator_only");
    }
    let res = operator_credit(&t, Some("anything"), huge.clone()).await;
    assert_eq!(res.status(), 403, "no configured token: no token works");
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "operator_only");
    assert_eq!(balance(&t, ws).await, 500, "nothing was credited");

    // With a token configured: a wrong, empty or missing one is refused; the right one credits.
    let t = TestApp::spawn_with(|c| c.operator_token = Some(OPERATOR.into())).await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let body = json!({"workspace_id": ws, "amount_cents": 250, "reason": "invoice 1", "idempotency_key": "inv-1"});
    let res = t.post(Some(&ana.token), "/api/wallet/credit", body.clone()).await;
    assert_eq!(res.status(), 403, "the owner's own token is not the operator's");
    for wrong in [Some("operator-secret-for-test"), Some("operator-secret-for-tests!"), Some(""), None] {
        let res = operator_credit(&t, wrong, body.clone()).await;
        assert_eq!(res.status(), 403, "{wrong:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "operator_only");
    }
    assert_eq!(balance(&t, ws).await, 500);
    let res = operator_credit(&t, Some(OPERATOR), body.clone()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(operator_credit(&t, Some(OPERATOR), body).await.status(), 200, "replayed, not doubled");
    assert_eq!(balance(&t, ws).await, 750);
    // Bad input from the operator is still a field error; an unknown workspace is 404.
    let bad = json!({"workspace_id": ws, "amount_cents": 0, "reason": "r", "idempotency_key": "z"});
    assert_eq!(operator_credit(&t, Some(OPERATOR), bad).await.status(), 400);
    let nowhere = json!({"workspace_id": Uuid::new_v4(), "amount_cents": 1, "reason": "r", "idempotency_key": "z"});
    assert_eq!(operator_credit(&t, Some(OPERATOR), nowhere).await.status(), 404);
    // Owners still debit and read.
    let debit = json!({"workspace_id": ws, "amount_cents": 50, "reason": "refund", "idempotency_key": "d1"});
    assert_eq!(t.post(Some(&ana.token), "/api/wallet/debit", debit).await.status(), 201);
    assert_eq!(balance(&t, ws).await, 700);
    assert_eq!(ledger_sum(&t, ws).await, 700);
}

#[tokio::test]
async fn the_admin_credit_command_credits_once_per_idempotency_key() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ws = workspace_of(&t, &ana).await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mathia-local"))
            .arg("admin")
            .args(args)
            .env("DATABASE_URL", &t.local.app.config.database_url)
            .env(
                "MATHIA_MASTER_KEY",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, t.local.app.config.master_key),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let ws_id = ws.to_string();
    let credit = [
        "credit",
        "--workspace",
        &ws_id,
        "--amount-cents",
        "700",
        "--reason",
        "invoice 12",
        "--idempotency-key",
        "inv-12",
    ];
    let (ok, out) = run(&credit);
    assert!(ok && out.contains("balance 1200"), "{out}");
    let (ok, out) = run(&credit);
    assert!(ok && out.contains("already"), "a rerun credits nothing: {out}");
    assert_eq!(balance(&t, ws).await, 1200);
    // Without a key, the same command is still credited once (the key is derived from it).
    let plain = ["credit", "--workspace", &ws_id, "--amount-cents", "5", "--reason", "goodwill"];
    assert!(run(&plain).0);
    assert!(run(&plain).0);
    assert_eq!(balance(&t, ws).await, 1205);
    for bad in [
        vec!["credit", "--workspace", "nope", "--amount-cents", "5", "--reason", "r"],
        vec!["credit", "--workspace", &ws_id, "--amount-cents", "-5", "--reason", "r"],
        vec!["credit", "--workspace", &ws_id, "--amount-cents", "5"],
        vec!["credit", "--workspace", &Uuid::nil().to_string(), "--amount-cents", "5", "--reason", "r"],
    ] {
        let (ok, out) = run(&bad);
        assert!(!ok, "{bad:?}: {out}");
    }
    assert_eq!(balance(&t, ws).await, 1205);
    let entries: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM ledger_entries WHERE workspace_id = $1 AND kind = 'credit' ORDER BY created_at",
    )
    .bind(ws)
    .fetch_all(&t.db().await)
    .await
    .unwrap();
    assert_eq!(entries, ["welcome credit", "invoice 12", "goodwill"]);
}
