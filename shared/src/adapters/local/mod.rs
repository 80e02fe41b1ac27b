//! In-process adapters used by `mathia-local` and tests: sockets held in this process, the
//! connection registry in memory, and a clock that tests can move.

mod clock;
mod connections;
mod push;

pub use clock::ManualClock;
pub use connections::InMemoryConnections;
pub use push::{LocalPush, SocketOutbox};
