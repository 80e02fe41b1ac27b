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

use std::{
    io,
    pin::Pin,
    sync::Arc,
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

/// A listener that holds at most `limit` connections: each accepted connection carries a permit,
/// given back when it closes (for a WebSocket, when the socket ends: the upgrade keeps the
/// connection's IO).
pub struct Bounded<L> {
    inner: L,
    permits: Arc<Semaphore>,
}

impl<L> Bounded<L> {
    pub fn new(inner: L, limit: usize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))) }
    }
}

impl<L: Listener> Listener for Bounded<L> {
    type Io = Held<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!("at the connection bound: new connections wait until one closes");
                self.permits.clone().acquire_owned().await.expect("the semaphore is never closed")
            }
        };
        let (io, addr) = self.inner.accept().await;
        (Held { io, _permit: permit }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection and its place under the bound.
pub struct Held<I> {
    io: I,
    _permit: OwnedSemaphorePermit,
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
}
