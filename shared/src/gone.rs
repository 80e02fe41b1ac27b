//! The connections this process found gone lately (a push answered 410), so that each is
//! noted once and skipped by later pushes: see [`GoneConnections`]. Used by `realtime`, kept by
//! the app.

use std::time::{Duration, Instant};

use crate::domain::ConnectionId;

/// The connections this process found gone lately. A gone connection is noted for the scheduler
/// (`realtime::note_gone`) once, and later pushes of this process skip it until its `$disconnect`
/// removes it from the registry: when a room empties at once, every announcement would otherwise
/// try all the others again and note each again. A connection id is never reused, so once gone it
/// stays gone; the memory is bounded and forgets after [`GoneConnections::REMEMBER`].
#[derive(Default)]
pub struct GoneConnections {
    seen: std::sync::Mutex<std::collections::HashMap<ConnectionId, Instant>>,
}

impl GoneConnections {
    /// How long a gone connection is remembered.
    pub const REMEMBER: Duration = Duration::from_secs(60);
    /// At most this many remembered at once (about a megabyte).
    pub const MAX: usize = 10_000;

    /// Whether a report at `at` is still remembered at `now`.
    fn recent(at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < Self::REMEMBER
    }

    /// Whether this process found `connection` gone within [`Self::REMEMBER`]: pushes skip it
    /// until its `$disconnect`, or the scheduler, forgets it.
    pub fn is_gone(&self, connection: &ConnectionId, now: Instant) -> bool {
        let seen = self.seen.lock().expect("gone connections lock");
        seen.get(connection).is_some_and(|at| Self::recent(*at, now))
    }

    /// Drops from `to` the connections [`is_gone`](Self::is_gone) says are gone, under one lock
    /// (none when nothing was found gone lately: the fan-out's usual case).
    pub fn drop_gone<T>(&self, to: &mut Vec<T>, id: impl Fn(&T) -> &ConnectionId, now: Instant) {
        let seen = self.seen.lock().expect("gone connections lock");
        if seen.is_empty() {
            return;
        }
        to.retain(|t| !seen.get(id(t)).is_some_and(|at| Self::recent(*at, now)));
    }

    /// True the first time `connection` is reported gone within [`Self::REMEMBER`]: the caller
    /// notes it for the scheduler; false when this process already has.
    pub fn first_report(&self, connection: &ConnectionId, now: Instant) -> bool {
        let mut seen = self.seen.lock().expect("gone connections lock");
        if let Some(at) = seen.get(connection)
            && Self::recent(*at, now)
        {
            return false;
        }
        if seen.len() >= Self::MAX {
            seen.retain(|_, at| Self::recent(*at, now));
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
        assert!(!gone.first_report(&a, now + Duration::from_secs(1)), "already noted");
        assert!(gone.first_report(&b, now), "another connection is its own");
        assert!(gone.is_gone(&a, now + Duration::from_secs(1)) && !gone.is_gone(&ConnectionId::new("c"), now));
        let mut to = vec![a.clone(), b.clone(), ConnectionId::new("c")];
        gone.drop_gone(&mut to, |c| c, now);
        assert_eq!(to, vec![ConnectionId::new("c")], "pushes skip what was found gone");
        assert!(!gone.is_gone(&a, now + GoneConnections::REMEMBER));
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
