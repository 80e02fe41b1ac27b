//! The connections this process found gone lately (a push answered 410), so that each is
//! forgotten once: see [`GoneConnections`]. Used by `realtime`, kept by the app.

use std::time::{Duration, Instant};

use crate::domain::ConnectionId;

/// The connections this process found gone lately. A room emptying at once answers most pushes
/// of each departure with 410; each gone connection is forgotten, which tells the room it left,
/// whose pushes find the others gone too. Without a memory, one departure forgot the same
/// connections again at every level of that, each time with a registry read (on DynamoDB a
/// Query), many times the room's size in reads for one departure. A
/// connection id is never reused, so once gone it stays gone; the memory is bounded and forgets
/// after [`GoneConnections::REMEMBER`].
#[derive(Default)]
pub struct GoneConnections {
    seen: std::sync::Mutex<std::collections::HashMap<ConnectionId, Instant>>,
}

impl GoneConnections {
    /// How long a gone connection is remembered.
    pub const REMEMBER: Duration = Duration::from_secs(60);
    /// At most this many remembered at once (about a megabyte).
    pub const MAX: usize = 10_000;

    /// True the first time `connection` is reported gone within [`Self::REMEMBER`]: the caller
    /// forgets it; false when this process already is or has.
    pub fn first_report(&self, connection: &ConnectionId, now: Instant) -> bool {
        let mut seen = self.seen.lock().expect("gone connections lock");
        if let Some(at) = seen.get(connection)
            && now.saturating_duration_since(*at) < Self::REMEMBER
        {
            return false;
        }
        if seen.len() >= Self::MAX {
            seen.retain(|_, at| now.saturating_duration_since(*at) < Self::REMEMBER);
            if seen.len() >= Self::MAX {
                seen.clear();
            }
        }
        seen.insert(connection.clone(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_connection_is_forgotten_once_while_remembered() {
        let gone = GoneConnections::default();
        let (a, b) = (ConnectionId::new("a"), ConnectionId::new("b"));
        let now = Instant::now();
        assert!(gone.first_report(&a, now));
        assert!(!gone.first_report(&a, now + Duration::from_secs(1)), "already being forgotten");
        assert!(gone.first_report(&b, now), "another connection is its own");
        assert!(gone.first_report(&a, now + GoneConnections::REMEMBER), "remembered for a while only");
    }

    #[test]
    fn the_memory_of_gone_connections_stays_bounded() {
        let gone = GoneConnections::default();
        let now = Instant::now();
        for i in 0..GoneConnections::MAX * 2 {
            assert!(gone.first_report(&ConnectionId::new(format!("c{i}")), now));
        }
        assert!(gone.seen.lock().unwrap().len() <= GoneConnections::MAX);
    }
}
