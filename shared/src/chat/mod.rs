//! Chat: rooms (`rooms`, and direct messages, rooms of two: `dms`) and what people do in them —
//! post (`post`, with its `mentions`), edit, delete and react (`change`), pin (`pins`), join,
//! leave and type (`presence`), how far each person has read (`read`), find (`search`). Each
//! action checks who may do it (`access`), stores, and tells the room (`realtime`); the
//! WebSocket edge only parses frames and reports errors.
//!
//! What runs after a person's message is stored is a list of [`AfterStore`] steps (moderation's
//! buffer, the assistant's request), assembled where the app is wired (`wiring::after_store`).

pub mod change;
pub mod dms;
pub mod mentions;
pub mod pins;
pub mod post;
pub mod presence;
pub mod read;
pub mod rooms;
pub mod search;
pub mod tools;

pub use crate::app::AfterStore;
