//! Onboarding: three steps, validated, saved as they are done, resumable; chat waits for it.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn each_bad_step_gets_a_field_error_and_saves_nothing_and_onboarding_resumes() {
    let t = TestApp::spawn().await;
    let ana = t.register_only("Ana").await;
    let me: Value = t.get(Some(&ana.token), "/api/me").await.json().await.unwrap();
    assert_eq!(me["onboarding"], json!({"step": "profile", "completed": false}));
    assert!(me["profile"].is_null() && me["goals"].is_null());
    assert_eq!(me["workspaces"], json!([]));

    // Chat waits for onboarding.
    let res = t.post(Some(&ana.token), "/api/rooms", json!({"name": "too soon"})).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "onboarding_incomplete");

    // Out of order.
    for (path, body) in
        [("/api/onboarding/goals", json!({"goals": ["x"]})), ("/api/onboarding/workspace", json!({"name": "Acme"}))]
    {
        let res = t.put(&ana.token, path, body).await;
        assert_eq!(res.status(), 409, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "onboarding_out_of_order");
    }
    // A bad timezone.
    let res =
        t.put(&ana.token, "/api/onboarding/profile", json!({"display_name": "Ana", "timezone": "Mars/Olympus"})).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "timezone");
    let me: Value = t.get(Some(&ana.token), "/api/me").await.json().await.unwrap();
    assert!(me["profile"].is_null(), "nothing saved");

    let res = t
        .put(
            &ana.token,
            "/api/onboarding/profile",
            json!({"display_name": "Ana Lima", "timezone": "America/Sao_Paulo", "role": "PM"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let state: Value = res.json().await.unwrap();
    assert_eq!(state["onboarding"]["step"], "goals");
    assert_eq!(state["profile"]["timezone"], "America/Sao_Paulo");
    assert_eq!(state["user"]["display_name"], "Ana Lima");

    // Empty goals.
    for goals in [json!([]), json!(["  ", ""])] {
        let res = t.put(&ana.token, "/api/onboarding/goals", json!({"goals": goals})).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "goals");
    }
    let res = t
        .put(
            &ana.token,
            "/api/onboarding/goals",
            json!({"goals": ["Launch v2", "Hire"], "focus": "launch", "tone": "concise"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["onboarding"]["step"], "workspace");

    // Logging in again resumes at the workspace step, with what was saved.
    let login: Value = t
        .post(None, "/api/auth/login", json!({"email": ana.email, "password": "correct horse battery"}))
        .await
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let me: Value = t.get(Some(token), "/api/me").await.json().await.unwrap();
    assert_eq!(me["onboarding"], json!({"step": "workspace", "completed": false}));
    assert_eq!(me["goals"]["goals"], json!(["Launch v2", "Hire"]));

    // An unknown invite code, or neither option.
    let res = t.put(token, "/api/onboarding/workspace", json!({"invite_code": "nope"})).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "invite_code");
    let res = t.put(token, "/api/onboarding/workspace", json!({})).await;
    assert_eq!(res.status(), 400);
    let me: Value = t.get(Some(token), "/api/me").await.json().await.unwrap();
    assert_eq!(me["workspaces"], json!([]), "nothing saved");

    let res = t.put(token, "/api/onboarding/workspace", json!({"name": "Acme"})).await;
    assert_eq!(res.status(), 200);
    let state: Value = res.json().await.unwrap();
    assert_eq!(state["onboarding"], json!({"step": "done", "completed": true}));
    assert_eq!(state["workspace"]["name"], "Acme");
    assert_eq!(state["workspace"]["role"], "owner");
    let rooms: Value = t.get(Some(token), "/api/rooms").await.json().await.unwrap();
    assert_eq!(rooms[0]["name"], "general", "a first room comes with the workspace");
    // Settings may edit the profile later without moving the step back.
    let res =
        t.put(token, "/api/onboarding/profile", json!({"display_name": "Ana L.", "timezone": "Europe/Lisbon"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["onboarding"]["step"], "done");
}

#[tokio::test]
async fn joining_by_invite_code_lands_in_the_room_and_the_workspace() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "launch").await;
    let code = t.invite(&ana, room.id, json!({})).await;
    let ben = t.register_only("Ben").await;
    let state = t.onboard(&ben, json!({"invite_code": code})).await;
    assert_eq!(state["workspace"]["role"], "member");
    assert_eq!(state["workspace"]["id"], room.workspace_id.to_string());
    let rooms: Value = t.get(Some(&ben.token), "/api/rooms").await.json().await.unwrap();
    assert!(rooms.as_array().unwrap().iter().any(|r| r["id"] == room.id.to_string()));
    // Accepting the same code again (the client does) spends nothing more.
    let again = t.post(Some(&ben.token), &format!("/api/invites/{code}/accept"), json!({})).await;
    assert_eq!(again.status(), 200);

    // A socket of someone not yet onboarded hears why they cannot chat.
    let cid = t.register_only("Cid").await;
    let mut ws = t.ws(&cid).await;
    ws.send(json!({"action": "join_room", "room_id": room.id})).await;
    assert_eq!(ws.recv_type("error").await["code"], "onboarding_incomplete");
    ws.assert_alive().await;
}

async fn owned_workspaces(t: &TestApp, user: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM workspaces WHERE owner_id = $1")
        .bind(user)
        .fetch_one(&t.db().await)
        .await
        .unwrap()
}

async fn welcome_credits(t: &TestApp, user: uuid::Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(l.amount_cents), 0)::bigint FROM ledger_entries l JOIN workspaces w ON w.id = l.workspace_id
         WHERE w.owner_id = $1 AND l.reason = 'welcome credit'",
    )
    .bind(user)
    .fetch_one(&t.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_workspace_step_replayed_after_onboarding_is_refused_and_welcomes_once() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    assert_eq!((owned_workspaces(&t, ana.id).await, welcome_credits(&t, ana.id).await), (1, 500));
    for body in [json!({"name": "Second"}), json!({"name": "Third"}), json!({"name": "Second"})] {
        let res = t.put(&ana.token, "/api/onboarding/workspace", body).await;
        assert_eq!(res.status(), 409);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "onboarding_complete");
    }
    assert_eq!((owned_workspaces(&t, ana.id).await, welcome_credits(&t, ana.id).await), (1, 500), "one welcome credit");
    let me: Value = t.get(Some(&ana.token), "/api/me").await.json().await.unwrap();
    assert_eq!(me["onboarding"], json!({"step": "done", "completed": true}), "the finished step stays done");

    // The step sent many times at once, before it was done: one workspace, one welcome credit.
    let ben = t.register_only("Ben").await;
    for (path, body) in [
        ("/api/onboarding/profile", json!({"display_name": "Ben", "timezone": "Europe/Paris"})),
        ("/api/onboarding/goals", json!({"goals": ["ship"]})),
    ] {
        assert_eq!(t.put(&ben.token, path, body).await.status(), 200);
    }
    let answers = futures::future::join_all(
        (0..8).map(|i| t.put(&ben.token, "/api/onboarding/workspace", json!({"name": format!("Ben {i}")}))),
    )
    .await;
    let ok = answers.iter().filter(|r| r.status() == 200).count();
    assert_eq!(ok, 1, "{:?}", answers.iter().map(|r| r.status()).collect::<Vec<_>>());
    assert!(answers.iter().all(|r| r.status() == 200 || r.status() == 409));
    assert_eq!((owned_workspaces(&t, ben.id).await, welcome_credits(&t, ben.id).await), (1, 500));
}

/// Someone scripting sign-ups for the welcome credit makes a workspace per account, from the same
/// few addresses: past an address's credits for the day, the workspace is made without one, and
/// works. A day later the address has credits again; joining by invite never takes one.
#[tokio::test]
async fn welcome_credits_from_one_address_are_bounded_a_day() {
    use chrono::{TimeZone, Utc};
    use mathia::adapters::local::ManualClock;

    let clock = std::sync::Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()));
    let t = TestApp::spawn_full(|c| c.welcome_credits_per_address_per_day = 2, Some(clock.clone())).await;
    let balance = |token: String, workspace: Value| {
        let t = &t;
        async move {
            let path = format!("/api/wallet?workspace_id={}", workspace.as_str().unwrap());
            let res = t.get(Some(&token), &path).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["balance_cents"].as_i64().unwrap()
        }
    };

    let ana = t.register("Ana").await;
    // Someone invited into Ana's workspace makes none and takes none of the address's credits:
    // Ben, after him, still has the second.
    let ana_room = t.create_room(&ana, "team").await;
    let code = t.invite(&ana, ana_room.id, json!({})).await;
    let dan = t.register_only("Dan").await;
    t.onboard(&dan, json!({"invite_code": code})).await;
    assert_eq!(owned_workspaces(&t, dan.id).await, 0);
    let ben = t.register("Ben").await;
    assert_eq!((welcome_credits(&t, ana.id).await, welcome_credits(&t, ben.id).await), (500, 500));
    let cat = t.register_only("Cat").await;
    let done = t.onboard(&cat, json!({"name": "Cat's team"})).await;
    assert_eq!((owned_workspaces(&t, cat.id).await, welcome_credits(&t, cat.id).await), (1, 0));
    assert_eq!(balance(cat.token.clone(), done["workspace"]["id"].clone()).await, 0);
    // Her workspace works without it.
    let room = t.create_room(&cat, "plans").await;
    let (mut c, _) = t.ws_in_room(&cat, room.id).await;
    c.send(json!({"action": "new_message", "room_id": room.id, "body": "hello", "client_msg_id": "c1"})).await;
    assert_eq!(c.recv_type("ack").await["client_msg_id"], "c1");

    // A day after the first, the address has a credit again.
    clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let eve = t.register_only("Eve").await;
    let done = t.onboard(&eve, json!({"name": "Eve's team"})).await;
    assert_eq!(welcome_credits(&t, eve.id).await, 500);
    assert_eq!(balance(eve.token.clone(), done["workspace"]["id"].clone()).await, 500);

    // The address is kept only while it counts: the scheduler clears it from Ana's and Ben's
    // credits, a day old, and keeps it on Eve's.
    let report = mathia::workers::scheduler::tick(&t.local.app).await;
    assert_eq!(report.welcome_addresses_forgotten, 2);
    let kept: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT user_id FROM welcome_credits WHERE address IS NOT NULL")
        .fetch_all(&t.db().await)
        .await
        .unwrap();
    assert_eq!(kept, [eve.id]);
    assert_eq!(mathia::workers::scheduler::tick(&t.local.app).await.welcome_addresses_forgotten, 0);
}

/// An address's welcome credits are counted in Postgres with the credits themselves: workspaces
/// made from one address at the same moment take no more than the day's bound between them, and
/// a restart (memory gone) does not give the address its credits back.
#[tokio::test]
async fn welcome_credits_from_one_address_hold_at_once_and_across_a_restart() {
    let mut t = TestApp::spawn_with(|c| c.welcome_credits_per_address_per_day = 2).await;
    let mut people = Vec::new();
    for name in ["Ana", "Ben", "Cat", "Dan", "Eve", "Fay"] {
        let user = t.register_only(name).await;
        for (path, body) in [
            ("/api/onboarding/profile", json!({"display_name": name, "timezone": "UTC"})),
            ("/api/onboarding/goals", json!({"goals": ["ship"]})),
        ] {
            assert_eq!(t.put(&user.token, path, body).await.status(), 200, "{path}");
        }
        people.push(user);
    }
    let answers = futures::future::join_all(
        people
            .iter()
            .map(|u| t.put(&u.token, "/api/onboarding/workspace", json!({"name": format!("{}'s team", u.name)}))),
    )
    .await;
    assert!(answers.iter().all(|r| r.status() == 200), "every workspace is made");
    let mut credited = 0;
    for u in &people {
        assert_eq!(owned_workspaces(&t, u.id).await, 1);
        credited += welcome_credits(&t, u.id).await;
    }
    assert_eq!(credited, 2 * 500, "two credits between six workspaces made at once");

    let t = t.restarted().await;
    let gil = t.register("Gil").await;
    assert_eq!(
        (owned_workspaces(&t, gil.id).await, welcome_credits(&t, gil.id).await),
        (1, 0),
        "restarted, still spent"
    );
}
