//! Posting a message: validate → rate-limit → take a turn in the room's order → queue for the
//! group commit (`queue`); then, once committed, `ack` the sender and send the message to the
//! room in stored order, and run the after-store steps ([`Queued::finish`]). The WebSocket edge
//! reads the next frame between the two, so one sender's messages are stored in the order sent
//! without each waiting for the commit of the one before.

use std::time::Duration;

use uuid::Uuid;

use super::AfterStore;
use crate::{
    access,
    adapters::postgres::{
        group_commit::PendingWrite,
        messages::{NewMessage, Stored},
        moderation,
    },
    app::App,
    domain::{ClientMsgId, Message, MessageBody, MessageKind},
    error::Error,
    ports::ConnectionInfo,
    protocol::ServerEvent,
    realtime::{push_to_room, send_event},
    room_order::Turn,
};

/// What a person posts.
pub struct Post<'a> {
    pub room_id: Uuid,
    pub body: &'a str,
    pub client_msg_id: &'a str,
    pub reply_to: Option<Uuid>,
    /// A file of theirs, accepted for this room (`files::accept_upload`).
    pub attachment: Option<Uuid>,
}

/// A new message with its turn in the room and its place in the writer's queue.
pub struct Queued {
    room_id: Uuid,
    client_msg_id: ClientMsgId,
    at: chrono::DateTime<chrono::Utc>,
    turn: Turn,
    write: PendingWrite,
}

/// Checks a new message and queues it for storage behind the room's earlier messages.
/// Membership and mutes are checked by the insert itself; [`Queued::finish`] says which failed.
pub async fn queue(app: &App, conn: &ConnectionInfo, post: Post<'_>) -> crate::Result<Queued> {
    let body = MessageBody::parse(post.body)?;
    let client_msg_id = ClientMsgId::parse(post.client_msg_id)?;
    let now = app.clock.now();
    rate_limit(app, conn.user_id, now).await?;

    let mut turn = app.room_order.enter(post.room_id);
    turn.wait_queued_before().await;
    let write = app.message_writer.submit(NewMessage {
        room_id: post.room_id,
        kind: MessageKind::User,
        author_id: Some(conn.user_id),
        body: body.into_inner(),
        client_msg_id: Some(client_msg_id.as_str().to_owned()),
        require_member: Some(conn.user_id),
        at: app.clock.now(),
        reply_to: post.reply_to,
        stopped: false,
        attachment_id: post.attachment,
    });
    turn.mark_queued();
    Ok(Queued { room_id: post.room_id, client_msg_id, at: now, turn, write })
}

pub use crate::limits::rate_limit;

impl Queued {
    /// Waits for the commit, then, after the room's earlier messages, acknowledges the message,
    /// sends it to the room, and runs `after_store` on it.
    pub async fn finish(self, app: &App, conn: &ConnectionInfo, after_store: &[&dyn AfterStore]) -> crate::Result<()> {
        let Queued { room_id, client_msg_id, at, mut turn, write } = self;
        match write.outcome().await? {
            // Refused by the insert: muted, or not a member — the rare path says which.
            Stored::NotMember => {
                drop(turn);
                match moderation::muted_until(&app.db, room_id, conn.user_id, at).await? {
                    Some(until) => Err(Error::Muted {
                        until,
                        retry_after: (until - at).to_std().unwrap_or(Duration::from_millis(1)),
                    }),
                    None => Err(access::not_member(app, conn.user_id).await),
                }
            }
            Stored::Duplicate(message_id) => {
                drop(turn);
                let ack = ServerEvent::Ack { client_msg_id: client_msg_id.into_inner(), message_id };
                send_event(app, conn.into(), &ack).await;
                Ok(())
            }
            Stored::New(mut message) => {
                tracing::info!(%room_id, seq = message.seq, "message stored");
                super::mentions::record(app, &mut message).await;
                turn.wait_done_before().await;
                let ack = ServerEvent::Ack { client_msg_id: client_msg_id.into_inner(), message_id: message.id };
                send_event(app, conn.into(), &ack).await;
                let event = ServerEvent::NewMessage { room_id, message: *message };
                push_to_room(app, room_id, &event, None).await;
                drop(turn);
                match &event {
                    ServerEvent::NewMessage { message, .. } => run_after_store(app, message, after_store).await,
                    _ => Ok(()),
                }
            }
        }
    }
}

/// Runs every step, each whatever the others did; answers the first failure.
async fn run_after_store(app: &App, message: &Message, steps: &[&dyn AfterStore]) -> crate::Result<()> {
    let mut first_error = None;
    for step in steps {
        if let Err(e) = step.run(app, message).await {
            tracing::warn!(step = step.name(), "an after-store step failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `file_message`: accepts the upload (size, real type), then posts it with its caption.
pub async fn file(
    app: &App,
    conn: &ConnectionInfo,
    room_id: Uuid,
    file_id: Uuid,
    client_msg_id: &str,
    caption: Option<&str>,
    after_store: &[&dyn AfterStore],
) -> crate::Result<()> {
    access::require_member(app, room_id, conn.user_id).await?;
    let file = crate::files::accept_upload(app, conn.user_id, room_id, file_id).await?;
    let body = caption.map(str::trim).filter(|c| !c.is_empty()).unwrap_or(&file.name);
    let post = Post { room_id, body, client_msg_id, reply_to: None, attachment: Some(file_id) };
    queue(app, conn, post).await?.finish(app, conn, after_store).await
}
