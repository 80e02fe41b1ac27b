//! Redis: short-lived, high-churn state — login and typing throttles, moderation buffers, and
//! where several processes share them (the Lambda functions) one-time WebSocket tickets and the
//! message rate limit (`mathia-local` keeps those two in memory). Connected lazily and
//! reconnected by the connection manager, so Mathia starts and serves HTTP while Redis is down;
//! every call then fails fast with `RedisDown`.

mod moderation_pushes;

use std::time::Duration;

use redis::{
    AsyncCommands, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::OnceCell;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis is unavailable: {0}")]
pub struct RedisDown(String);

impl From<redis::RedisError> for RedisDown {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

impl From<RedisDown> for crate::error::Error {
    fn from(e: RedisDown) -> Self {
        tracing::warn!(error = %e, "Redis unavailable");
        Self::Unavailable(crate::error::Dependency::Realtime)
    }
}

/// The outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after_ms: u64 },
}

// Sliding-window log: one sorted-set member per accepted event, scored by its time in ms.
// Deterministic at window edges (a fixed window would let a burst straddle two windows).
const RATE_LIMIT_LUA: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local retry = tonumber(oldest[2]) + window - now
  if retry < 1 then retry = 1 end
  return retry
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return 0
";

// A throttle that only counts failures: whether `limit` of them happened in the window (and
// when the oldest that matters leaves it), without counting this attempt. The same sorted set
// as the rate limit, written by `note_failure`.
const THROTTLE_CHECK_LUA: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n < limit then return 0 end
local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 1 then retry = 1 end
return retry
";

/// How typing signals of one person in one room reach the room ([`RedisStore::typing_signal`]).
#[derive(Debug, Clone, Copy)]
pub struct TypingLimits {
    /// Repeated starts go at most this often.
    pub every: Duration,
    /// How long after a start the others show the person typing (a later stop goes only within it).
    pub shown_for: Duration,
    /// Signals that go, starts and stops together, per `window`.
    pub budget: u32,
    pub window: Duration,
}

/// What a socket's frame budget says of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDecision {
    Serve,
    /// Drop it; `tell` at most once per `tell_every`.
    Refuse {
        retry_after_ms: u64,
        tell: bool,
    },
}

// A socket's frame budget where no process holds the socket (Lambda): a token bucket of
// `burst` frames refilled at `per_s` a second, per connection, timed by Redis's own clock so
// function instances with skewed clocks agree. Returns {0, 0} to serve, or {retry_after_ms, tell}.
const FRAME_BUDGET_LUA: &str = r"
local key = KEYS[1]
local per_s = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tell_every = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', key, 't', 'l', 'w')
local tokens = tonumber(s[1]) or burst
local last = tonumber(s[2]) or now
local told = tonumber(s[3]) or -1
if now > last then tokens = math.min(burst, tokens + (now - last) * per_s / 1000) end
local ttl = math.ceil(burst * 1000 / per_s) + tell_every
if tokens >= 1 then
  redis.call('HSET', key, 't', tostring(tokens - 1), 'l', now)
  redis.call('PEXPIRE', key, ttl)
  return {0, 0}
end
local retry = math.ceil((1 - tokens) * 1000 / per_s)
if retry < 1 then retry = 1 end
local tell = 0
if told < 0 or now - told >= tell_every then
  tell = 1
  told = now
end
redis.call('HSET', key, 't', tostring(tokens), 'l', now, 'w', told)
redis.call('PEXPIRE', key, ttl)
return {retry, tell}
";

// Whether one typing signal of a (user, room) goes to the room, timed by Redis's own clock. A
// start goes at most once per `every` ms (a stop re-arms it) and marks the person shown as typing
// for `show` ms; a stop goes only while they are shown. At most `budget` signals go in a fixed
// window of `window` ms, so alternating starts and stops cannot flood the room. Returns 1 to send.
const TYPING_LUA: &str = r"
local key = KEYS[1]
local typing = ARGV[1] == '1'
local every = tonumber(ARGV[2])
local show = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', key, 'next', 'shown', 'w', 'c')
local nxt = tonumber(s[1]) or 0
local shown = tonumber(s[2]) or 0
local w = tonumber(s[3]) or now
local c = tonumber(s[4]) or 0
if now - w >= window then
  w = now
  c = 0
end
local send = 0
if typing then
  if now >= nxt then
    nxt = now + every
    if c < budget then
      send = 1
      c = c + 1
      shown = now + show
    end
  end
else
  nxt = 0
  if shown > now and c < budget then
    send = 1
    c = c + 1
  end
  shown = 0
end
redis.call('HSET', key, 'next', nxt, 'shown', shown, 'w', w, 'c', c)
redis.call('PEXPIRE', key, math.max(window, show, every))
return send
";

// Takes a one-time ticket, refusing it when the session it was fetched with has ended since
// (logout leaves `session-ended:<session>`). The ended key is named from the ticket's value, so it
// is not in KEYS: Mathia uses one Redis node, not Redis Cluster.
const TAKE_TICKET_LUA: &str = r"
local v = redis.call('GETDEL', KEYS[1])
if not v then return false end
local session = string.match(v, '^%S+ (%S+)')
if session and redis.call('EXISTS', ARGV[1] .. session) == 1 then return false end
return v
";

// Takes up to ARGV[2] members scored at most ARGV[1] (ms) and removes them, so each is taken
// once however many schedulers run.
const TAKE_OLDER_LUA: &str = r"
local taken = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #taken > 0 then redis.call('ZREM', KEYS[1], unpack(taken)) end
return taken
";

// A room's next presence number (`presence-seq:{room}`). A key that is not there starts at
// ARGV[1], the caller's clock in ms times 1,000, so one lost (Redis restarted, or expired after a
// quiet day) starts above every number it gave, unless the room made 1,000 changes a millisecond
// since it began. Each number lives ARGV[2] ms past its last use.
const PRESENCE_SEQ_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

/// What a socket ticket is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketTicket {
    pub user_id: Uuid,
    /// The session token's hash (hex).
    pub session: String,
    pub display_name: String,
}

/// A ticket taken at the handshake. A ticket an older build stored has no name, and may have no
/// session: the handshake then checks both in Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenTicket {
    pub user_id: Uuid,
    pub session: Option<String>,
    pub display_name: Option<String>,
}

impl TakenTicket {
    /// `<user> [<session> [<display name, spaces and all>]]`.
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, ' ');
        let user_id = parts.next()?.parse().ok()?;
        let session = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
        let display_name = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
        Some(Self { user_id, session, display_name })
    }
}

/// A key's life in whole milliseconds, at least one (Redis refuses a zero expiry).
fn expiry_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    /// Set by the first call that reaches Redis; a failed first connect is tried again by the
    /// next call. Read without a lock afterwards: every message makes Redis calls.
    conn: OnceCell<ConnectionManager>,
    rate_limit: Script,
    throttle_check: Script,
    take_batch: Script,
    frame_budget: Script,
    take_ticket: Script,
    typing: Script,
    take_older: Script,
    presence_seq: Script,
    /// Moderation-buffer pushes waiting for the one on the wire.
    moderation_pushes: moderation_pushes::Pushes,
}

impl RedisStore {
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            conn: OnceCell::new(),
            rate_limit: Script::new(RATE_LIMIT_LUA),
            throttle_check: Script::new(THROTTLE_CHECK_LUA),
            take_batch: Script::new(TAKE_BATCH_LUA),
            frame_budget: Script::new(FRAME_BUDGET_LUA),
            take_ticket: Script::new(TAKE_TICKET_LUA),
            typing: Script::new(TYPING_LUA),
            take_older: Script::new(TAKE_OLDER_LUA),
            presence_seq: Script::new(PRESENCE_SEQ_LUA),
            moderation_pushes: moderation_pushes::Pushes::default(),
        })
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    /// The moderation buffers' key names, written once (`moderation_pushes::Keys`).
    fn moderation_keys(&self) -> moderation_pushes::Keys<'_> {
        moderation_pushes::Keys { prefix: &self.prefix }
    }

    async fn conn(&self) -> Result<ConnectionManager, RedisDown> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(self.client.clone(), config).await.map_err(RedisDown::from)
            })
            .await?;
        Ok(conn.clone())
    }

    pub async fn ping(&self) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Stores a one-time ticket (by its hash) for a user's session (the session token's hash,
    /// never the token) and their display name, so the socket it opens belongs to that session
    /// and the handshake needs no database read. `ttl` is at most the session's remaining life.
    pub async fn put_session_ticket(
        &self,
        ticket_hash: &str,
        ticket: &SocketTicket,
        ttl: Duration,
    ) -> Result<(), RedisDown> {
        let key = self.key(&format!("ticket:{ticket_hash}"));
        let mut conn = self.conn().await?;
        let value = format!("{} {} {}", ticket.user_id, ticket.session, ticket.display_name);
        let _: () = conn.pset_ex(key, value, expiry_ms(ttl)).await?;
        Ok(())
    }

    /// Marks a session as ended for as long as a ticket fetched with it could live (`ttl`), so
    /// [`take_session_ticket`](Self::take_session_ticket) refuses those tickets from now on. Written
    /// before the session is revoked in Postgres: a ticket fetched in between is refused too.
    pub async fn end_session_tickets(&self, session: &str, ttl: Duration) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: () = conn.pset_ex(self.key(&format!("session-ended:{session}")), 1, expiry_ms(ttl)).await?;
        Ok(())
    }

    /// True when the session has logged out ([`end_session_tickets`](Self::end_session_tickets))
    /// within the time it is remembered.
    pub async fn session_ended(&self, session: &str) -> Result<bool, RedisDown> {
        let mut conn = self.conn().await?;
        Ok(conn.exists(self.key(&format!("session-ended:{session}"))).await?)
    }

    /// Takes a ticket, in one round trip: the first caller gets what it was stored with, every
    /// later one None; so does a ticket whose session has ended since it was fetched.
    pub async fn take_session_ticket(&self, ticket_hash: &str) -> Result<Option<TakenTicket>, RedisDown> {
        let mut conn = self.conn().await?;
        let value: Option<String> = self
            .take_ticket
            .key(self.key(&format!("ticket:{ticket_hash}")))
            .arg(self.key("session-ended:"))
            .invoke_async(&mut conn)
            .await?;
        Ok(value.as_deref().and_then(TakenTicket::parse))
    }

    /// Counts one event for `subject` against `limit` per `window`.
    pub async fn rate_limit(
        &self,
        subject: &str,
        now_ms: i64,
        window: Duration,
        limit: u32,
        event_id: &str,
    ) -> Result<RateDecision, RedisDown> {
        let mut conn = self.conn().await?;
        let retry: i64 = self
            .rate_limit
            .key(self.key(&format!("rl:{subject}")))
            .arg(now_ms)
            .arg(window.as_millis() as i64)
            .arg(limit)
            .arg(event_id)
            .invoke_async(&mut conn)
            .await?;
        Ok(if retry > 0 { RateDecision::Limited { retry_after_ms: retry as u64 } } else { RateDecision::Allowed })
    }

    /// Spends one frame of `connection`'s budget (`per_s` a second, `burst` at once).
    pub async fn frame_budget(
        &self,
        connection: &str,
        per_s: u32,
        burst: u32,
        tell_every: Duration,
    ) -> Result<FrameDecision, RedisDown> {
        let mut conn = self.conn().await?;
        let (retry, tell): (i64, i64) = self
            .frame_budget
            .key(self.key(&format!("fb:{connection}")))
            .arg(per_s.max(1))
            .arg(burst.max(1))
            .arg(tell_every.as_millis() as i64)
            .invoke_async(&mut conn)
            .await?;
        Ok(if retry > 0 {
            FrameDecision::Refuse { retry_after_ms: retry as u64, tell: tell == 1 }
        } else {
            FrameDecision::Serve
        })
    }

    /// Whether `subject` had `limit` failures within `window` (login throttles); counts nothing.
    pub async fn throttled(
        &self,
        subject: &str,
        now_ms: i64,
        window: Duration,
        limit: u32,
    ) -> Result<RateDecision, RedisDown> {
        let mut conn = self.conn().await?;
        let retry: i64 = self
            .throttle_check
            .key(self.key(&format!("rl:{subject}")))
            .arg(now_ms)
            .arg(window.as_millis() as i64)
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(if retry > 0 { RateDecision::Limited { retry_after_ms: retry as u64 } } else { RateDecision::Allowed })
    }

    /// Counts one failure of `subject` for [`Self::throttled`], kept for `window`.
    pub async fn note_failure(&self, subject: &str, now_ms: i64, window: Duration) -> Result<(), RedisDown> {
        let key = self.key(&format!("rl:{subject}"));
        let mut conn = self.conn().await?;
        let _: () = redis::pipe()
            .zadd(&key, Uuid::new_v4().to_string(), now_ms)
            .ignore()
            .pexpire(&key, window.as_millis() as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether a typing signal of a (user, room) goes to the room ([`TypingLimits`]): repeated
    /// starts at most once per `every` (a stop re-arms it), a stop only while the person is shown
    /// typing, and at most `budget` signals per `window` in all.
    pub async fn typing_signal(
        &self,
        user_id: Uuid,
        room_id: Uuid,
        typing: bool,
        limits: &TypingLimits,
    ) -> Result<bool, RedisDown> {
        let mut conn = self.conn().await?;
        let send: i64 = self
            .typing
            .key(self.key(&format!("typing-signal:{room_id}:{user_id}")))
            .arg(i64::from(typing))
            .arg(limits.every.as_millis() as i64)
            .arg(limits.shown_for.as_millis() as i64)
            .arg(limits.budget)
            .arg(limits.window.as_millis() as i64)
            .invoke_async(&mut conn)
            .await?;
        Ok(send == 1)
    }

    /// The room's next presence number, greater than every one it gave before (see
    /// `realtime::read_presence`): taken after a change to who is in the room and before the read
    /// its announcement is made from. `now_ms` starts a room's numbers (and starts them again,
    /// above the old ones, if Redis lost them).
    pub async fn presence_seq(&self, room_id: Uuid, now_ms: i64) -> Result<u64, RedisDown> {
        let mut conn = self.conn().await?;
        let n: u64 = self
            .presence_seq
            .key(self.key(&format!("presence-seq:{room_id}")))
            .arg(now_ms.max(0).saturating_mul(1000))
            .arg(86_400_000)
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }

    fn presence_heard_key(&self, room_id: Uuid, user_id: Uuid) -> String {
        self.key(&format!("presence-heard:{room_id}:{user_id}"))
    }

    /// Remembers, for a day, that a room was told a person arrived (`presence-heard:{room}:{user}`),
    /// so their departure is told too whatever the room's budget for them
    /// ([`take_arrival_heard`](Self::take_arrival_heard)).
    pub async fn arrival_heard(&self, room_id: Uuid, user_id: Uuid) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: () = conn.set_ex(self.presence_heard_key(room_id, user_id), 1, 86_400).await?;
        Ok(())
    }

    /// Forgets what [`arrival_heard`](Self::arrival_heard) remembered; true when it had: the
    /// room was told the person arrived and not yet that they left. One caller gets true.
    pub async fn take_arrival_heard(&self, room_id: Uuid, user_id: Uuid) -> Result<bool, RedisDown> {
        let mut conn = self.conn().await?;
        let removed: i64 = conn.del(self.presence_heard_key(room_id, user_id)).await?;
        Ok(removed == 1)
    }

    /// True while the room has been told the person arrived and not yet that they left
    /// ([`arrival_heard`](Self::arrival_heard)).
    pub async fn arrival_was_heard(&self, room_id: Uuid, user_id: Uuid) -> Result<bool, RedisDown> {
        let mut conn = self.conn().await?;
        Ok(conn.exists(self.presence_heard_key(room_id, user_id)).await?)
    }

    /// Remembers that a person's arrival in a room, or their departure, went untold (past their
    /// presence budget), for the scheduler to look at again
    /// ([`take_untold_presence`](Self::take_untold_presence)). One entry per person and room.
    pub async fn presence_untold(&self, room_id: Uuid, user_id: Uuid) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: () = conn.sadd(self.key("presence-unheard"), format!("{room_id}:{user_id}")).await?;
        Ok(())
    }

    /// Takes up to `max` of the untold presence changes as (room, person); each is taken once.
    pub async fn take_untold_presence(&self, max: usize) -> Result<Vec<(Uuid, Uuid)>, RedisDown> {
        let mut conn = self.conn().await?;
        let taken: Vec<String> =
            redis::cmd("SPOP").arg(self.key("presence-unheard")).arg(max).query_async(&mut conn).await?;
        Ok(taken
            .iter()
            .filter_map(|pair| {
                let (room, user) = pair.split_once(':')?;
                Some((room.parse().ok()?, user.parse().ok()?))
            })
            .collect())
    }

    /// `presence-departing` members of a connection's departure: `{room}:{user}:{connection}`.
    fn departure_members(connection: &str, user_id: Uuid, rooms: &[Uuid]) -> Vec<String> {
        rooms.iter().map(|room| format!("{room}:{user_id}:{connection}")).collect()
    }

    /// Writes down that a connection is being forgotten, before it is removed from the registry:
    /// one entry per room it was in, scored by `at_ms`. The one forgetting it crosses them off
    /// once the rooms are told ([`departure_ended`](Self::departure_ended)); a process cut off in
    /// between leaves them for the scheduler ([`take_cut_off_departures`](Self::take_cut_off_departures)).
    pub async fn departure_begun(
        &self,
        connection: &str,
        user_id: Uuid,
        rooms: &[Uuid],
        at_ms: i64,
    ) -> Result<(), RedisDown> {
        if rooms.is_empty() {
            return Ok(());
        }
        let members = Self::departure_members(connection, user_id, rooms);
        let scored: Vec<(i64, &String)> = members.iter().map(|m| (at_ms, m)).collect();
        let mut conn = self.conn().await?;
        let _: () = conn.zadd_multiple(self.key("presence-departing"), &scored).await?;
        Ok(())
    }

    /// Crosses off what [`departure_begun`](Self::departure_begun) wrote down: the rooms were told.
    pub async fn departure_ended(&self, connection: &str, user_id: Uuid, rooms: &[Uuid]) -> Result<(), RedisDown> {
        if rooms.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let _: () =
            conn.zrem(self.key("presence-departing"), Self::departure_members(connection, user_id, rooms)).await?;
        Ok(())
    }

    /// Takes up to `max` departures begun at or before `begun_by_ms` and never crossed off, as
    /// (room, person, connection): whoever forgot the connection was cut off before it was
    /// done. Each is taken once.
    pub async fn take_cut_off_departures(
        &self,
        begun_by_ms: i64,
        max: usize,
    ) -> Result<Vec<(Uuid, Uuid, String)>, RedisDown> {
        Ok(self
            .take_older(&self.key("presence-departing"), begun_by_ms, max)
            .await?
            .iter()
            .filter_map(|member| {
                let mut parts = member.splitn(3, ':');
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.to_owned()))
            })
            .collect())
    }

    /// Notes that a push found a connection gone (`connections-gone`, scored by when it was
    /// first found), for the scheduler to forget if its `$disconnect` does not.
    pub async fn connection_gone(&self, connection: &str, at_ms: i64) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: () = redis::cmd("ZADD")
            .arg(self.key("connections-gone"))
            .arg("NX")
            .arg(at_ms)
            .arg(connection)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Takes up to `max` connections first found gone at or before `found_by_ms`; each is taken
    /// once.
    pub async fn take_gone_connections(&self, found_by_ms: i64, max: usize) -> Result<Vec<String>, RedisDown> {
        self.take_older(&self.key("connections-gone"), found_by_ms, max).await
    }

    /// Takes (reads and removes) up to `max` members of a sorted set scored at most `by`.
    async fn take_older(&self, key: &str, by: i64, max: usize) -> Result<Vec<String>, RedisDown> {
        let mut conn = self.conn().await?;
        Ok(self.take_older.key(key).arg(by).arg(max).invoke_async(&mut conn).await?)
    }

    /// Records which room an AI stream belongs to, for as long as it may run.
    pub async fn put_stream(&self, stream_id: Uuid, room_id: Uuid) -> Result<(), RedisDown> {
        let key = self.key(&format!("stream:{stream_id}"));
        let mut conn = self.conn().await?;
        let _: () = conn.set_ex(key, room_id.to_string(), 3600).await?;
        Ok(())
    }

    pub async fn stream_room(&self, stream_id: &str) -> Result<Option<Uuid>, RedisDown> {
        let key = self.key(&format!("stream:{stream_id}"));
        let mut conn = self.conn().await?;
        let room: Option<String> = conn.get(key).await?;
        Ok(room.and_then(|r| r.parse().ok()))
    }

    /// Asks a running stream to stop (it may run in another process).
    pub async fn request_stop(&self, stream_id: &str) -> Result<(), RedisDown> {
        let key = self.key(&format!("stop:{stream_id}"));
        let mut conn = self.conn().await?;
        let _: () = conn.set_ex(key, 1, 3600).await?;
        Ok(())
    }

    pub async fn stop_requested(&self, stream_id: Uuid) -> Result<bool, RedisDown> {
        let key = self.key(&format!("stop:{stream_id}"));
        let mut conn = self.conn().await?;
        Ok(conn.exists(key).await?)
    }

    /// Adds a message to a room's moderation buffer; answers the buffer's length just after it.
    /// Pushes made while another is on the wire go together, in one pipeline
    /// (`moderation_pushes`).
    pub async fn buffer_for_moderation(
        &self,
        room_id: Uuid,
        message_id: Uuid,
        now_ms: i64,
    ) -> Result<usize, RedisDown> {
        self.moderation_pushes.push(room_id, message_id, now_ms, self.moderation_keys(), || self.conn()).await
    }

    /// Takes up to `max` buffered message ids of a room (all when `max` is 0), atomically: two
    /// takers never get the same id, and none is dropped.
    pub async fn take_moderation_batch(&self, room_id: Uuid, max: usize, now_ms: i64) -> Result<Vec<Uuid>, RedisDown> {
        let mut conn = self.conn().await?;
        let ids: Vec<String> = self
            .take_batch
            .key(self.moderation_keys().list(room_id))
            .key(self.moderation_keys().index())
            .arg(room_id.to_string())
            .arg(max)
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// Puts taken ids back at the front of a room's moderation buffer, in their order, and marks
    /// the room waiting since `since_ms` at the latest (a batch the queue refused).
    pub async fn return_to_moderation(&self, room_id: Uuid, ids: &[Uuid], since_ms: i64) -> Result<(), RedisDown> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys = self.moderation_keys();
        let (list, index) = (keys.list(room_id), keys.index());
        let mut conn = self.conn().await?;
        let front_first: Vec<String> = ids.iter().rev().map(Uuid::to_string).collect();
        let _: () = redis::pipe()
            .atomic()
            .lpush(&list, front_first)
            .ignore()
            .cmd("ZADD")
            .arg(&index)
            .arg("LT")
            .arg(since_ms)
            .arg(room_id.to_string())
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Rooms whose oldest buffered message waited since before `cutoff_ms`.
    pub async fn stale_moderation_rooms(&self, cutoff_ms: i64) -> Result<Vec<Uuid>, RedisDown> {
        let index = self.moderation_keys().index();
        let mut conn = self.conn().await?;
        let rooms: Vec<String> = conn.zrangebyscore(index, "-inf", cutoff_ms).await?;
        Ok(rooms.iter().filter_map(|r| r.parse().ok()).collect())
    }
}

// Takes a batch from a room's list and keeps the index of waiting rooms true.
const TAKE_BATCH_LUA: &str = r"
local list, index = KEYS[1], KEYS[2]
local room, max, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local len = redis.call('LLEN', list)
if len == 0 then
  redis.call('ZREM', index, room)
  return {}
end
local take = len
if max > 0 and max < len then take = max end
local ids = redis.call('LRANGE', list, 0, take - 1)
redis.call('LTRIM', list, take, -1)
if take == len then redis.call('ZREM', index, room) else redis.call('ZADD', index, now, room) end
return ids
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_carries_its_session_and_a_name_with_spaces() {
        let user = Uuid::new_v4();
        let session = "ab".repeat(32);
        let taken = TakenTicket::parse(&format!("{user} {session} Ana María de la Cruz")).unwrap();
        assert_eq!(
            taken,
            TakenTicket {
                user_id: user,
                session: Some(session.clone()),
                display_name: Some("Ana María de la Cruz".into())
            }
        );
        // Stored by an older build: no name (the handshake then reads Postgres), or no session.
        let taken = TakenTicket::parse(&format!("{user} {session}")).unwrap();
        assert_eq!((taken.session.as_deref(), taken.display_name), (Some(session.as_str()), None));
        let taken = TakenTicket::parse(&user.to_string()).unwrap();
        assert_eq!((taken.session, taken.display_name), (None, None));
        assert_eq!(TakenTicket::parse("not-a-user session name"), None);
    }
}
