//! The accept loop: each connection served by hyper's HTTP/1 with a timer, so a request's head
//! has a deadline (`axum::serve` sets no timer, and then hyper's header read timeout is off).
//!
//! Without it a connection could trickle a request's head a byte at a time, never silent long
//! enough for the idle deadline (`bounded`), and keep its place under the connection bound as long
//! as it liked. hyper counts the deadline from the connection's start, and from the end of each
//! response on a kept-alive one, so it also closes a connection that asks nothing: a kept-alive
//! one after this long without a next request. An upgraded socket is past hyper and keeps only the
//! idle deadline.
//!
//! A request's body has a pace of its own (`MinRate`): once the head's deadline has passed again
//! since the head arrived, the body must have come at [`MIN_BODY_RATE`] on average, or it is cut
//! (408 `request_timeout`). A trickled body is never silent either, and an upload on a slow link
//! still goes far faster than that.

use std::{
    future::Future,
    net::SocketAddr,
    pin::{Pin, pin},
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{BoxError, Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{
    body::{Bytes, Frame, Incoming, SizeHint},
    server::conn::http1,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use mathia::handlers::http::error::BodyTooSlow;
use tokio::{
    sync::watch,
    time::{Instant, Sleep},
};
use tower::ServiceExt;

/// The slowest a request body may come, on average, once its grace is over: bytes a second.
pub const MIN_BODY_RATE: u64 = 1024;

/// Serves `router` on `listener` until `signal` resolves, then stops accepting, lets each
/// connection finish the request it is serving, and returns once all have. Handlers see the
/// peer's address as `ConnectInfo<SocketAddr>`. A request's body must come at
/// [`MIN_BODY_RATE`] on average once `head_timeout` has passed since its head.
pub async fn serve<L>(mut listener: L, router: Router, head_timeout: Duration, signal: impl Future<Output = ()>)
where
    L: Listener<Addr = SocketAddr>,
{
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(head_timeout);
    // Every connection task holds a receiver; the loop waits for them all to drop theirs.
    let (open_tx, open_rx) = watch::channel(());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signal = pin!(signal);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let service = router.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| Body::new(MinRate::new(body, head_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let (open, mut stop) = (open_rx.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut connection = pin!(connection.with_upgrades());
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    // Once: finish the request in hand, then close.
                    Ok(()) = stop.changed() => connection.as_mut().graceful_shutdown(),
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

/// A request body that must keep a pace: by `grace` after its head plus a second for every
/// [`MIN_BODY_RATE`] bytes come so far, it must have ended or sent more, or it ends with
/// [`BodyTooSlow`]. The timer is only set once the reader waits for a body that has not ended.
struct MinRate<B> {
    inner: B,
    since: Instant,
    grace: Duration,
    received: u64,
    due: Option<Pin<Box<Sleep>>>,
}

impl<B> MinRate<B> {
    fn new(inner: B, grace: Duration) -> Self {
        Self { inner, since: Instant::now(), grace, received: 0, due: None }
    }

    /// When the body is too slow unless more has come by then.
    fn deadline(&self) -> Instant {
        self.since + self.grace + Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64)
    }
}

impl<B> hyper::body::Body for MinRate<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.deadline();
                    if let Some(due) = &mut this.due {
                        due.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline();
                let due = this.due.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(due.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyTooSlow.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
