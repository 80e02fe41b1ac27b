//! Who a session token belongs to. Postgres answers; the process that every logout and rename
//! passes through (`mathia-local`) also remembers the answer
//! ([`SessionCache`](crate::adapters::local::SessionCache)), so an authenticated request or a
//! socket ticket costs no database round trip once the session has been seen. Each change to a
//! session or its owner tells that memory here, once committed.

use uuid::Uuid;

use crate::{
    adapters::{
        local::Lookup,
        postgres::users::{self, LiveSession},
    },
    app::App,
};

/// The live (not expired, not revoked) session of a token, and its owner.
pub async fn live(app: &App, token: &str) -> Result<Option<LiveSession>, sqlx::Error> {
    let now = app.clock.now();
    let hash = users::token_hash(token);
    let Some(cache) = &app.sessions else {
        return users::session_user(&app.db, &hash, now).await;
    };
    let fill = match cache.lookup(&hash, now) {
        Lookup::Hit(session) => return Ok(Some(session)),
        Lookup::Miss(fill) => fill,
    };
    let session = users::session_user(&app.db, &hash, now).await?;
    if let Some(session) = &session {
        cache.fill(hash, session, fill);
    }
    Ok(session)
}

/// A session was revoked (a logout): it is not answered from memory any more.
pub fn revoked(app: &App, token: &str) {
    if let Some(cache) = &app.sessions {
        cache.forget_session(&users::token_hash(token));
    }
}

/// A user's details changed (display name, onboarding step), committed: their sessions are read
/// again.
pub fn user_changed(app: &App, user_id: Uuid) {
    if let Some(cache) = &app.sessions {
        cache.forget_user(user_id);
    }
}
