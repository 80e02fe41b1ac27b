//! The accept loop: each connection served by hyper's HTTP/1 with a timer, so a request's head
//! has a deadline (`axum::serve` sets no timer, and then hyper's header read timeout is off).
//!
//! Without it a connection could trickle a request's head a byte at a time, never silent long
//! enough for the idle deadline (`bounded`), and keep its place under the connection bound as long
//! as it liked. hyper counts the deadline from the connection's start, and from the end of each
//! response on a kept-alive one, so it also closes a connection that asks nothing: a kept-alive
//! one after this long without a next request. An upgraded socket is past hyper and keeps only the
//! idle deadline.

use std::{future::Future, net::SocketAddr, pin::pin, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `signal` resolves, then stops accepting, lets each
/// connection finish the request it is serving, and returns once all have. Handlers see the
/// peer's address as `ConnectInfo<SocketAddr>`.
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
            let mut request = request.map(Body::new);
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
