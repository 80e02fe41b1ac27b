//! One-time socket tickets in memory, for the one process that both issues and takes them
//! (`mathia-local`: `POST /api/ws-ticket`, then the handshake). Where tickets are issued by one
//! process and taken by another (the Lambda functions, the emulated gateways) they live in Redis.
//!
//! A ticket is taken at most once and never after its time. One person's tickets are capped
//! ([`Tickets::PER_PERSON`], the oldest dropped first), so a flood of ticket requests costs the
//! flooder their own older tickets and nobody else's; all tickets together are capped too.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::adapters::redis::SocketTicket;

struct Entry {
    ticket: SocketTicket,
    until: Instant,
}

#[derive(Default)]
struct State {
    /// By the ticket's hash (hex); the ticket itself is never kept.
    entries: HashMap<String, Entry>,
    /// Each person's tickets, oldest first.
    by_user: HashMap<Uuid, VecDeque<String>>,
    /// Every ticket in the order issued, taken or not: swept from the front once expired or
    /// gone. No ticket lives longer than the longest ticket time, so nothing stays past it.
    issued: VecDeque<String>,
}

impl State {
    fn remove(&mut self, hash: &str) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        let user = entry.ticket.user_id;
        if let Some(hashes) = self.by_user.get_mut(&user) {
            hashes.retain(|h| h != hash);
            if hashes.is_empty() {
                self.by_user.remove(&user);
            }
        }
        Some(entry)
    }

    /// Drops tickets from the front of the issue order that were taken or have expired.
    fn sweep(&mut self, now: Instant) {
        while let Some(oldest) = self.issued.front() {
            match self.entries.get(oldest) {
                Some(e) if e.until > now => break,
                Some(_) => {
                    let oldest = self.issued.pop_front().expect("a front");
                    self.remove(&oldest);
                }
                None => {
                    self.issued.pop_front();
                }
            }
        }
    }
}

pub struct Tickets {
    state: Mutex<State>,
    per_person: usize,
    capacity: usize,
}

impl Default for Tickets {
    /// [`Tickets::PER_PERSON`] per person, [`Tickets::AT_MOST`] in all.
    fn default() -> Self {
        Self::new(Self::PER_PERSON, Self::AT_MOST)
    }
}

impl Tickets {
    /// Untaken tickets one person may hold: each browser tab takes its ticket within a round
    /// trip, so only a flood comes near it.
    pub const PER_PERSON: usize = 64;
    /// Untaken tickets in all (a few hundred bytes each).
    pub const AT_MOST: usize = 100_000;

    pub fn new(per_person: usize, capacity: usize) -> Self {
        Self { state: Mutex::default(), per_person: per_person.max(1), capacity: capacity.max(1) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain maps, consistent after every statement: a panic elsewhere leaves nothing half-done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps a ticket (by its hash) for `ttl`. Past the person's cap their oldest ticket is
    /// dropped; past the total cap, the oldest of all.
    pub fn put(&self, hash: String, ticket: SocketTicket, ttl: Duration) {
        let now = Instant::now();
        let mut s = self.state();
        s.sweep(now);
        let user = ticket.user_id;
        let theirs = s.by_user.entry(user).or_default();
        theirs.push_back(hash.clone());
        let dropped = (theirs.len() > self.per_person).then(|| theirs.pop_front()).flatten();
        if let Some(dropped) = dropped {
            s.entries.remove(&dropped);
        }
        s.issued.push_back(hash.clone());
        s.entries.insert(hash, Entry { ticket, until: now + ttl });
        while s.entries.len() > self.capacity {
            let Some(oldest) = s.issued.pop_front() else { break };
            s.remove(&oldest);
        }
    }

    /// Takes a ticket: the first caller within its time gets what it was issued with, every
    /// later one None.
    pub fn take(&self, hash: &str) -> Option<SocketTicket> {
        let now = Instant::now();
        let mut s = self.state();
        let entry = s.remove(hash);
        s.sweep(now);
        // An expired ticket not yet swept (behind a longer-lived one) is refused all the same.
        entry.filter(|e| e.until > now).map(|e| e.ticket)
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let s = self.state();
        (s.entries.len(), s.by_user.values().map(VecDeque::len).sum(), s.issued.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ticket(user_id: Uuid) -> SocketTicket {
        SocketTicket { user_id, session: "session-hash".into(), display_name: "Ana María".into() }
    }

    #[test]
    fn a_ticket_is_taken_once_and_not_after_its_time() {
        let tickets = Tickets::default();
        let ana = Uuid::new_v4();
        tickets.put("t1".into(), ticket(ana), MINUTE);
        assert_eq!(tickets.take("t1"), Some(ticket(ana)));
        assert_eq!(tickets.take("t1"), None, "second use");
        assert_eq!(tickets.take("never-issued"), None);
        tickets.put("stale".into(), ticket(ana), Duration::ZERO);
        assert_eq!(tickets.take("stale"), None, "expired");
        assert_eq!(tickets.held(), (0, 0, 0), "nothing left behind");
    }

    #[test]
    fn a_flood_of_tickets_costs_the_flooder_their_oldest_and_nobody_else_theirs() {
        let tickets = Tickets::new(3, 1_000);
        let (ana, ben) = (Uuid::new_v4(), Uuid::new_v4());
        tickets.put("ana".into(), ticket(ana), MINUTE);
        for i in 0..5 {
            tickets.put(format!("ben{i}"), ticket(ben), MINUTE);
        }
        assert_eq!(tickets.take("ben0"), None, "dropped past Ben's cap");
        assert_eq!(tickets.take("ben1"), None, "dropped past Ben's cap");
        for i in 2..5 {
            assert_eq!(tickets.take(&format!("ben{i}")), Some(ticket(ben)));
        }
        assert_eq!(tickets.take("ana"), Some(ticket(ana)), "Ana's ticket untouched");
        assert_eq!(tickets.held(), (0, 0, 0));
    }

    #[test]
    fn past_the_total_cap_the_oldest_ticket_goes() {
        let tickets = Tickets::new(10, 4);
        let users: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        for (i, user) in users.iter().enumerate() {
            tickets.put(format!("t{i}"), ticket(*user), MINUTE);
        }
        assert_eq!(tickets.held(), (4, 4, 4));
        assert_eq!(tickets.take("t0"), None);
        assert_eq!(tickets.take("t1"), None);
        assert_eq!(tickets.take("t2"), Some(ticket(users[2])));
        assert_eq!(tickets.take("t5"), Some(ticket(users[5])));
    }

    #[test]
    fn expired_and_taken_tickets_are_swept_in_issue_order() {
        let tickets = Tickets::default();
        let ana = Uuid::new_v4();
        for i in 0..100 {
            tickets.put(format!("gone{i}"), ticket(ana), Duration::ZERO);
        }
        tickets.put("live".into(), ticket(ana), MINUTE);
        assert_eq!(tickets.held(), (1, 1, 1), "the expired ones swept by the next issue");
        // A short ticket behind a long one waits for it in the issue order, and is refused anyway.
        tickets.put("short".into(), ticket(ana), Duration::ZERO);
        assert_eq!(tickets.held(), (2, 2, 2));
        assert_eq!(tickets.take("short"), None);
        assert_eq!(tickets.take("live"), Some(ticket(ana)));
        assert_eq!(tickets.held(), (0, 0, 0));
    }
}
