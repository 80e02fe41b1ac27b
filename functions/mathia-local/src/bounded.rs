//! How many TCP connections one `mathia-local` process holds at once.
//!
//! Every socket and HTTP connection is a file descriptor, and so is every connection the process
//! makes itself (Postgres, Redis, the model endpoint). Without a bound, enough connections
//! (many people, or one script from many addresses) take every descriptor the process may open,
//! and then the accept loop fails in a loop and a new Postgres connection fails too: everyone's
//! chat stops, not just the newcomers'. The listener therefore holds at most a bound of
//! connections; past it, it accepts nothing until one closes, and new clients wait in the
//! kernel's queue while the connections already open go on as before.
//!
//! The bound is `MATHIA_MAX_CONNECTIONS`, or else the open-file limit (raised to the hard limit at
//! start) less [`RESERVED_FILES`] for the process's own use.
//!
//! One client address holds at most `MATHIA_CONNECTIONS_PER_ADDRESS` of them, so one script
//! cannot fill the bound alone: a connection past its address's share is closed as soon as it
//! is accepted, and the others keep their places.
//!
//! Nor may a connection hold its place by saying nothing: one that passes no byte either way for
//! `MATHIA_IDLE_TIMEOUT_S` (10 minutes) is closed. This matters for sockets (an HTTP connection
//! has a shorter deadline for each request's head, see `serve`); a socket that only listens is not
//! idle while its rooms talk, and the web client pings every 25 s.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::serve::Listener;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

/// Descriptors the process keeps for itself: its Postgres pool (20), Redis, the model endpoint's
/// and Calendly's connections, files being served or uploaded, the runtime's own.
pub const RESERVED_FILES: u64 = 256;

/// The fewest connections the bound allows, however low the open-file limit.
const AT_LEAST: u64 = 64;

/// Raises this process's open-file limit to its hard limit (a server holding thousands of sockets
/// needs more than the usual soft limit of 1,024) and says what the limit now is.
pub fn raise_open_files() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else { return u64::MAX };
    let Some(hard) = hard else { return soft };
    if hard > soft {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
            Ok(()) => return hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit"),
        }
    }
    soft
}

/// The connections a process whose open-file limit is `open_files` holds at once.
pub fn connections_for(open_files: u64) -> usize {
    let bound = open_files.saturating_sub(RESERVED_FILES).max(AT_LEAST);
    usize::try_from(bound).unwrap_or(usize::MAX)
}

/// What a [`Bounded`] listener holds.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections at once.
    pub connections: usize,
    /// Of those, from one client address.
    pub per_address: usize,
    /// How long a connection may pass no byte either way.
    pub idle: Duration,
}

/// A listener that holds at most `connections` connections, and at most `per_address` from one
/// client address: each accepted connection carries a permit, given back when it closes (for a
/// WebSocket, when the socket ends: the upgrade keeps the connection's IO). A connection that
/// stays silent past its deadline is closed.
pub struct Bounded<L> {
    inner: L,
    permits: Arc<Semaphore>,
    addresses: Arc<Addresses>,
    idle: Duration,
}

impl<L> Bounded<L> {
    pub fn new(inner: L, bounds: Bounds) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(bounds.connections.min(Semaphore::MAX_PERMITS))),
            addresses: Arc::new(Addresses { per_address: bounds.per_address, open: Mutex::new(HashMap::new()) }),
            idle: bounds.idle,
        }
    }
}

impl<L: Listener<Addr = SocketAddr>> Listener for Bounded<L> {
    type Io = Held<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let permit = match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    tracing::warn!("at the connection bound: new connections wait until one closes");
                    self.permits.clone().acquire_owned().await.expect("the semaphore is never closed")
                }
            };
            let (io, addr) = self.inner.accept().await;
            match Addresses::admit(&self.addresses, addr.ip()) {
                Some(address) => {
                    let deadline = Deadline::new(self.idle);
                    return (Held { io, deadline, _permit: permit, _address: address }, addr);
                }
                // Dropped: closed at once, and its permit is free again.
                None => tracing::debug!("a connection past its address's share was closed"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Connections open per client address.
struct Addresses {
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Addresses {
    /// A place for one more connection from `ip`, or None when it has its share.
    fn admit(this: &Arc<Self>, ip: IpAddr) -> Option<AddressShare> {
        let mut open = this.open.lock().expect("addresses lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= this.per_address {
            return None;
        }
        *count += 1;
        Some(AddressShare { addresses: this.clone(), ip })
    }
}

/// One connection's place in its address's share, given back on drop.
struct AddressShare {
    addresses: Arc<Addresses>,
    ip: IpAddr,
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        let mut open = self.addresses.open.lock().expect("addresses lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// When a silent connection is closed. Each byte read or written moves it by storing the time;
/// the one timer is re-armed only when it fires, so traffic costs a clock read, not a timer.
struct Deadline {
    /// The last byte either way (or the accept).
    last: Instant,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(idle: Duration) -> Self {
        let now = Instant::now();
        Self { last: now, idle, timer: Box::pin(tokio::time::sleep_until(now + idle)) }
    }

    fn moved(&mut self) {
        self.last = Instant::now();
    }

    fn moved_by(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.moved();
        }
    }

    /// Whether the connection has been silent past its deadline; until then, the task waiting
    /// to read is woken when the deadline comes.
    fn poll_passed(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

/// An accepted connection, its place under the bound and its silence deadline.
pub struct Held<I> {
    io: I,
    deadline: Deadline,
    _permit: OwnedSemaphorePermit,
    _address: AddressShare,
}

impl<I> Held<I> {
    pub fn get_ref(&self) -> &I {
        &self.io
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Held<I> {
    /// A silent connection's deadline is watched here: whoever holds a connection waits on its
    /// reads (hyper between requests, a socket's reader), and a read that fails ends it.
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.deadline.moved();
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.deadline.poll_passed(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "silent past its deadline")))
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Held<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.deadline.moved_by(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.deadline.moved_by(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_keeps_files_for_the_process() {
        assert_eq!(connections_for(20_000), 19_744);
        assert_eq!(connections_for(1_024), 768);
        assert_eq!(connections_for(100), 64, "never below the floor");
        assert!(raise_open_files() >= 64);
    }

    /// A byte moves the deadline: the timer that fires at the old one is re-armed, not taken for
    /// the end, and silence past the new one fails the read.
    #[tokio::test]
    async fn a_byte_moves_the_deadline_and_silence_past_it_fails_the_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let idle = Duration::from_millis(200);
        let addresses = Arc::new(Addresses { per_address: 1, open: Mutex::new(HashMap::new()) });
        let (mut client, server) = tokio::io::duplex(64);
        let mut held = Held {
            io: server,
            deadline: Deadline::new(idle),
            _permit: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            _address: Addresses::admit(&addresses, "127.0.0.1".parse().unwrap()).unwrap(),
        };
        tokio::time::sleep(idle / 2).await;
        client.write_all(b"x").await.unwrap();
        let byte_at = Instant::now();
        let mut buf = [0; 8];
        assert_eq!(held.read(&mut buf).await.unwrap(), 1);
        let error = held.read(&mut buf).await.expect_err("silent past the idle deadline");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(byte_at.elapsed() >= idle, "the deadline counts from the last byte: {:?}", byte_at.elapsed());
        drop(held);
        assert!(addresses.open.lock().unwrap().is_empty(), "its place is given back");
    }

    #[test]
    fn an_address_holds_its_share_and_gives_it_back() {
        let addresses = Arc::new(Addresses { per_address: 2, open: Mutex::new(HashMap::new()) });
        let (one, two): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = Addresses::admit(&addresses, one).unwrap();
        let _second = Addresses::admit(&addresses, one).unwrap();
        assert!(Addresses::admit(&addresses, one).is_none());
        let _other = Addresses::admit(&addresses, two).expect("another address has its own share");
        drop(first);
        assert!(Addresses::admit(&addresses, one).is_some());
        drop(_other);
        assert!(!addresses.open.lock().unwrap().contains_key(&two), "an address with none open is forgotten");
    }
}
