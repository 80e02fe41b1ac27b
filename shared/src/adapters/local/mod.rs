//! In-process adapters used by `mathia-local` and tests: sockets held in this process, the
//! connection registry in memory, queues on channels, live sessions remembered, rate windows,
//! socket tickets, and a clock that tests can move.

mod clock;
mod connections;
mod offline;
mod push;
mod queue;
mod rate;
mod sessions;
mod tickets;

pub use clock::ManualClock;
pub use connections::InMemoryConnections;
pub use offline::{OFFLINE_REPLY, OfflineResponder};
pub use push::{CloseReason, LocalPush, SocketOutbox};
pub use queue::{LocalQueue, LocalQueueReceivers, QueuedJob};
pub use rate::RateWindows;
pub use sessions::{Fill, Lookup, SessionCache};
pub use tickets::Tickets;
