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

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::serve::Listener;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
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

/// A listener that holds at most `limit` connections, and at most `per_address` from one client
/// address: each accepted connection carries a permit, given back when it closes (for a
/// WebSocket, when the socket ends: the upgrade keeps the connection's IO).
pub struct Bounded<L> {
    inner: L,
    permits: Arc<Semaphore>,
    addresses: Arc<Addresses>,
}

impl<L> Bounded<L> {
    pub fn new(inner: L, limit: usize, per_address: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            addresses: Arc::new(Addresses { per_address, open: Mutex::new(HashMap::new()) }),
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
                Some(address) => return (Held { io, _permit: permit, _address: address }, addr),
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

/// An accepted connection and its place under the bound.
pub struct Held<I> {
    io: I,
    _permit: OwnedSemaphorePermit,
    _address: AddressShare,
}

impl<I> Held<I> {
    pub fn get_ref(&self) -> &I {
        &self.io
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Held<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Held<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
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
