//! Live sessions remembered in memory, in front of Postgres's read of them, for the one process
//! that every change to a session passes through (`mathia-local`: logout, a new display name).
//! Every authenticated request and every socket ticket starts with that read, so remembering it
//! takes a Postgres round trip off each. Where several processes serve one database (the Lambda
//! functions, the emulated gateways) nothing is remembered: a logout in one would not reach the
//! memory of another.
//!
//! What can change about a live session is its owner's display name and onboarding step: each
//! change forgets the owner's sessions once committed ([`SessionCache::forget_user`]), a logout
//! forgets its session ([`SessionCache::forget_session`]). A session that expires is not answered
//! from here ([`SessionCache::lookup`] checks its end), and nothing is kept longer than the
//! cache's `ttl`, whatever else happens.
//!
//! A read of Postgres that raced a forget is not remembered, but only when the forget was of the
//! same session or its owner: one person logging in and out, or saving their profile, in a loop
//! does not keep anyone else's session from being remembered.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::adapters::postgres::users::LiveSession;

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(LiveSession),
    /// Not remembered: read it, then hand it to [`SessionCache::fill`] with this.
    Miss(Fill),
}

/// The cache's generation when a lookup missed. A session read from Postgres is not remembered
/// when it, or its owner, was forgotten since: a logout or rename that committed while the read
/// ran would otherwise be undone by the read's older answer.
#[derive(Debug, Clone, Copy)]
pub struct Fill(u64);

struct Entry {
    session: LiveSession,
    kept_until: Instant,
}

#[derive(Default)]
struct State {
    /// By the session token's hash (`sessions.token_hash`).
    entries: HashMap<Vec<u8>, Entry>,
    /// The hashes remembered for each user, to forget them all at a rename.
    by_user: HashMap<Uuid, Vec<Vec<u8>>>,
    /// Moves on every forget.
    generation: u64,
    /// The latest forgets, oldest first, each with the generation it moved to. A fill from an
    /// earlier generation is dropped when one of these since concerns it, or when forgets it
    /// would need to check have already left this list.
    forgotten: VecDeque<(u64, Forgotten)>,
}

#[derive(Debug)]
enum Forgotten {
    Session(Vec<u8>),
    User(Uuid),
}

impl State {
    fn remove(&mut self, hash: &[u8]) {
        let Some(entry) = self.entries.remove(hash) else { return };
        let user = entry.session.user.id;
        if let Some(hashes) = self.by_user.get_mut(&user) {
            hashes.retain(|h| h.as_slice() != hash);
            if hashes.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    fn forgot(&mut self, what: Forgotten) {
        self.generation += 1;
        if self.forgotten.len() == FORGETS_KEPT {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back((self.generation, what));
    }

    /// Whether a read of `hash` (owned by `user`) that began at generation `since` may have
    /// missed a forget of it.
    fn forgotten_since(&self, since: u64, hash: &[u8], user: Uuid) -> bool {
        if self.generation == since {
            return false;
        }
        // Forgets after `since` are no longer all listed: one of them may have been this.
        if self.forgotten.front().is_none_or(|(oldest, _)| *oldest > since + 1) {
            return true;
        }
        self.forgotten.iter().rev().take_while(|(generation, _)| *generation > since).any(|(_, what)| match what {
            Forgotten::Session(h) => h.as_slice() == hash,
            Forgotten::User(u) => *u == user,
        })
    }
}

pub struct SessionCache {
    state: Mutex<State>,
    ttl: Duration,
    capacity: usize,
}

/// How long a session is remembered at most. Every change is told to the memory when it
/// commits; this bounds what nothing told it, such as a row edited by hand.
const REMEMBERED_FOR: Duration = Duration::from_secs(60);

/// How many sessions are remembered at once (about 200 bytes each).
const REMEMBERED_AT_MOST: usize = 10_000;

/// How many of the latest forgets are listed for reads that raced them. A read takes a
/// millisecond or so; one that saw more forgets than this go by is not remembered.
const FORGETS_KEPT: usize = 1_024;

impl Default for SessionCache {
    /// 10,000 sessions at most, each for at most 60 s.
    fn default() -> Self {
        Self::new(REMEMBERED_FOR, REMEMBERED_AT_MOST)
    }
}

impl SessionCache {
    /// Remembers at most `capacity` sessions, each for at most `ttl`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { state: Mutex::default(), ttl, capacity: capacity.max(1) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain map, consistent after every statement: a panic elsewhere while it
        // was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session of a token's hash, when remembered and not ended by `now`.
    pub fn lookup(&self, hash: &[u8], now: DateTime<Utc>) -> Lookup {
        let mut s = self.state();
        match s.entries.get(hash) {
            Some(e) if e.kept_until > Instant::now() && e.session.expires_at > now => Lookup::Hit(e.session.clone()),
            Some(_) => {
                s.remove(hash);
                Lookup::Miss(Fill(s.generation))
            }
            None => Lookup::Miss(Fill(s.generation)),
        }
    }

    /// Remembers what Postgres answered after `fill`'s lookup missed, unless this session or its
    /// owner was forgotten meanwhile.
    pub fn fill(&self, hash: Vec<u8>, session: &LiveSession, fill: Fill) {
        let mut s = self.state();
        if s.forgotten_since(fill.0, &hash, session.user.id) {
            return;
        }
        let now = Instant::now();
        if s.entries.len() >= self.capacity && !s.entries.contains_key(&hash) {
            s.entries.retain(|_, e| e.kept_until > now);
            if s.entries.len() >= self.capacity {
                s.entries.clear();
            }
            let State { entries, by_user, .. } = &mut *s;
            by_user.retain(|_, hashes| {
                hashes.retain(|h| entries.contains_key(h));
                !hashes.is_empty()
            });
        }
        let user = session.user.id;
        let previous = s.entries.insert(hash.clone(), Entry { session: session.clone(), kept_until: now + self.ttl });
        if previous.is_none() {
            s.by_user.entry(user).or_default().push(hash);
        }
    }

    /// Forgets a session (a logout), once Postgres has revoked it.
    pub fn forget_session(&self, hash: &[u8]) {
        let mut s = self.state();
        s.forgot(Forgotten::Session(hash.to_vec()));
        s.remove(hash);
    }

    /// Forgets every session of a user whose details changed (display name, onboarding step),
    /// once the change is committed.
    pub fn forget_user(&self, user: Uuid) {
        let mut s = self.state();
        s.forgot(Forgotten::User(user));
        for hash in s.by_user.remove(&user).unwrap_or_default() {
            s.entries.remove(&hash);
        }
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::User;

    fn session(user: Uuid, name: &str, expires_at: DateTime<Utc>) -> LiveSession {
        LiveSession {
            user: User { id: user, email: format!("{name}@example.com"), display_name: name.into() },
            onboarded: true,
            expires_at,
        }
    }

    fn miss(cache: &SessionCache, hash: &[u8], now: DateTime<Utc>) -> Fill {
        match cache.lookup(hash, now) {
            Lookup::Miss(fill) => fill,
            Lookup::Hit(s) => panic!("expected a miss, found {}", s.user.display_name),
        }
    }

    fn hit(cache: &SessionCache, hash: &[u8], now: DateTime<Utc>) -> LiveSession {
        match cache.lookup(hash, now) {
            Lookup::Hit(s) => s,
            Lookup::Miss(_) => panic!("expected a hit"),
        }
    }

    #[test]
    fn remembers_a_session_until_it_ends() {
        let cache = SessionCache::new(Duration::from_secs(60), 100);
        let now = Utc::now();
        let ana = Uuid::now_v7();
        let fill = miss(&cache, b"a", now);
        cache.fill(b"a".to_vec(), &session(ana, "Ana", now + TimeDelta::seconds(10)), fill);
        assert_eq!(hit(&cache, b"a", now).user.display_name, "Ana");
        // Past the session's own end it is not answered, and is dropped.
        miss(&cache, b"a", now + TimeDelta::seconds(10));
        assert!(cache.is_empty());
    }

    #[test]
    fn keeps_nothing_longer_than_its_ttl() {
        let cache = SessionCache::new(Duration::from_millis(30), 100);
        let now = Utc::now();
        let fill = miss(&cache, b"a", now);
        cache.fill(b"a".to_vec(), &session(Uuid::now_v7(), "Ana", now + TimeDelta::days(1)), fill);
        hit(&cache, b"a", now);
        std::thread::sleep(Duration::from_millis(40));
        miss(&cache, b"a", now);
    }

    #[test]
    fn a_read_older_than_a_logout_or_rename_is_not_remembered() {
        let cache = SessionCache::new(Duration::from_secs(60), 100);
        let now = Utc::now();
        let ana = Uuid::now_v7();
        let live = session(ana, "Ana", now + TimeDelta::days(1));

        // A read that started before a logout committed answers the session as live: kept, it
        // would outlive the logout.
        let fill = miss(&cache, b"a", now);
        cache.forget_session(b"a");
        cache.fill(b"a".to_vec(), &live, fill);
        miss(&cache, b"a", now);

        // The same for a rename: the read carries the old name.
        let fill = miss(&cache, b"a", now);
        cache.forget_user(ana);
        cache.fill(b"a".to_vec(), &live, fill);
        miss(&cache, b"a", now);

        // A read after them is kept.
        let fill = miss(&cache, b"a", now);
        cache.fill(b"a".to_vec(), &live, fill);
        hit(&cache, b"a", now);
    }

    #[test]
    fn another_persons_logouts_and_renames_do_not_stop_a_session_being_remembered() {
        let cache = SessionCache::new(Duration::from_secs(60), 100);
        let now = Utc::now();
        let (ana, ben) = (Uuid::now_v7(), Uuid::now_v7());
        let live = session(ana, "Ana", now + TimeDelta::days(1));

        // Ben saves his profile and logs in and out in a loop while Ana's session is read.
        let fill = miss(&cache, b"a", now);
        for i in 0..100u32 {
            cache.forget_user(ben);
            cache.forget_session(&i.to_be_bytes());
        }
        cache.fill(b"a".to_vec(), &live, fill);
        assert_eq!(hit(&cache, b"a", now).user.display_name, "Ana");

        // Ana's own logout among Ben's forgets still drops her older read.
        cache.forget_session(b"a");
        let fill = miss(&cache, b"a", now);
        cache.forget_session(b"a");
        for _ in 0..100 {
            cache.forget_user(ben);
        }
        cache.fill(b"a".to_vec(), &live, fill);
        miss(&cache, b"a", now);

        // And her rename.
        let fill = miss(&cache, b"a", now);
        cache.forget_user(ben);
        cache.forget_user(ana);
        cache.forget_user(ben);
        cache.fill(b"a".to_vec(), &live, fill);
        miss(&cache, b"a", now);
    }

    #[test]
    fn a_read_that_outlived_the_list_of_forgets_is_not_remembered() {
        let cache = SessionCache::new(Duration::from_secs(60), 100);
        let now = Utc::now();
        let (ana, ben) = (Uuid::now_v7(), Uuid::now_v7());
        let live = session(ana, "Ana", now + TimeDelta::days(1));

        // Ana's logout, then more of Ben's forgets than are listed: hers has left the list, so the
        // read cannot tell and is not kept.
        let fill = miss(&cache, b"a", now);
        cache.forget_session(b"a");
        for _ in 0..FORGETS_KEPT {
            cache.forget_user(ben);
        }
        cache.fill(b"a".to_vec(), &live, fill);
        miss(&cache, b"a", now);
        assert_eq!(cache.state().forgotten.len(), FORGETS_KEPT);

        // Exactly as many forgets as are listed, none of them hers: still known to be safe.
        let fill = miss(&cache, b"a", now);
        for _ in 0..FORGETS_KEPT {
            cache.forget_user(ben);
        }
        cache.fill(b"a".to_vec(), &live, fill);
        hit(&cache, b"a", now);
    }

    #[test]
    fn forgets_one_session_or_all_of_a_users() {
        let cache = SessionCache::new(Duration::from_secs(60), 100);
        let now = Utc::now();
        let (ana, ben) = (Uuid::now_v7(), Uuid::now_v7());
        let end = now + TimeDelta::days(1);
        for (hash, user, name) in [(b"a1", ana, "Ana"), (b"a2", ana, "Ana"), (b"b1", ben, "Ben")] {
            let fill = miss(&cache, hash, now);
            cache.fill(hash.to_vec(), &session(user, name, end), fill);
        }
        cache.forget_session(b"a1");
        miss(&cache, b"a1", now);
        hit(&cache, b"a2", now);

        cache.forget_user(ana);
        miss(&cache, b"a2", now);
        assert_eq!(hit(&cache, b"b1", now).user.display_name, "Ben");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = SessionCache::new(Duration::from_secs(60), 3);
        let now = Utc::now();
        let end = now + TimeDelta::days(1);
        let users: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        for (i, user) in users.iter().enumerate() {
            let hash = vec![i as u8];
            let fill = miss(&cache, &hash, now);
            cache.fill(hash, &session(*user, "Someone", end), fill);
            assert!(cache.len() <= 3, "{} remembered", cache.len());
        }
        // The newest is remembered; forgetting a user evicted earlier finds nothing to do.
        hit(&cache, &[9], now);
        cache.forget_user(users[0]);
        hit(&cache, &[9], now);
        assert!(cache.state().by_user.len() <= 3);
    }
}
