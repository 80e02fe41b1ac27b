//! The `/ws` socket under the gateway: the HTTP/1.1 upgrade (RFC 6455 §4.2), and a write path
//! that keeps no memory while a socket is idle.
//!
//! axum's `WebSocket` hides the connection and its frames. Under it, tungstenite formats every
//! frame into one output buffer per socket that is drained but never shrunk, so a socket that
//! was once sent a long event (a room's history, a burst of 64 frames) keeps that much memory
//! for the rest of its life (bench/RESULTS.md, "Idle sockets that joined a room"). Here the
//! socket is driven by tokio-tungstenite directly, so that:
//! - a long text event goes out as continuation frames of at most [`FRAGMENT`] bytes, so the
//!   largest frame tungstenite ever formats is small;
//! - tungstenite writes each frame at once into [`Lean`], which gathers a burst's frames into one
//!   buffer, writes it to the connection on flush, and frees it once it is sent.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::{
    body::{Body, Bytes},
    extract::FromRequestParts,
    http::{self, StatusCode, Version, request::Parts},
    response::{IntoResponse, Response},
};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        error::ProtocolError,
        handshake::server::create_response,
        protocol::{
            Role, WebSocketConfig,
            frame::{
                Frame,
                coding::{Data, OpCode},
            },
        },
    },
};

/// A server socket on an upgraded connection.
pub(crate) type Socket = WebSocketStream<Lean<TokioIo<Upgraded>>>;

/// The longest frame payload sent; a longer text event is split into continuation frames.
pub(crate) const FRAGMENT: usize = 1024;

/// Bytes a socket may have gathered and not yet written before writing more waits.
const HIGH_WATER: usize = 64 * 1024;

/// A valid WebSocket upgrade request: the `101 Switching Protocols` that answers it, and the
/// connection to take over.
pub(crate) struct Upgrade {
    accepted: http::Response<()>,
    on_upgrade: OnUpgrade,
}

/// Why a request to `/ws` is not a WebSocket upgrade.
#[derive(Debug)]
pub(crate) struct NotUpgrade(StatusCode, String);

impl IntoResponse for NotUpgrade {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.version != Version::HTTP_11 {
            return Err(NotUpgrade(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "WebSocket needs HTTP/1.1".into()));
        }
        // tungstenite checks the request (RFC 6455 §4.2.1) and words the answer. The headers are
        // lent to it and given back, not copied.
        let mut request = http::Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = std::mem::take(&mut parts.headers);
        let accepted = create_response(&request);
        parts.headers = request.into_parts().0.headers;
        let accepted = accepted.map_err(|e| {
            let status = match e {
                tungstenite::Error::Protocol(ProtocolError::WrongHttpMethod) => StatusCode::METHOD_NOT_ALLOWED,
                _ => StatusCode::BAD_REQUEST,
            };
            NotUpgrade(status, e.to_string())
        })?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotUpgrade(StatusCode::UPGRADE_REQUIRED, "WebSocket request couldn't be upgraded".into()))?;
        Ok(Self { accepted, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and, once the client has it, runs `serve` on the socket;
    /// `failed` runs instead when the connection is gone before it is upgraded.
    pub(crate) fn on_upgrade<F, Fut>(
        self,
        config: WebSocketConfig,
        failed: impl FnOnce() + Send + 'static,
        serve: F,
    ) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // tungstenite writes every frame to `Lean` straight away: the gathering happens there.
        let config = config.write_buffer_size(0);
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = Lean::new(TokioIo::new(upgraded));
                    serve(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
                }
                Err(_) => failed(),
            }
        });
        let (head, ()) = self.accepted.into_parts();
        Response::from_parts(head, Body::empty())
    }
}

/// A text event as the frames that carry it: one frame, or when longer than [`FRAGMENT`] a text
/// frame and continuation frames, each cut on a character boundary.
pub(crate) fn text_frames(text: Utf8Bytes) -> impl Iterator<Item = Message> {
    // Most events fit one frame and pass through untouched.
    let (mut whole, bytes) =
        if text.len() <= FRAGMENT { (Some(Message::Text(text)), Bytes::new()) } else { (None, Bytes::from(text)) };
    let mut start = 0;
    std::iter::from_fn(move || {
        if let Some(message) = whole.take() {
            return Some(message);
        }
        if start == bytes.len() {
            return None;
        }
        let mut end = (start + FRAGMENT).min(bytes.len());
        // Bytes 0b10xx_xxxx continue a character; a cut never leaves one at a frame's start.
        while end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        let opcode = if start == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let frame = Frame::message(bytes.slice(start..end), opcode, end == bytes.len());
        start = end;
        Some(Message::Frame(frame))
    })
}

/// A connection's write side that gathers what is written until it is flushed, writes it in as
/// few calls as the connection takes, and frees its buffer once it is sent: an idle socket
/// holds no output buffer whatever it was sent before.
pub(crate) struct Lean<T> {
    io: T,
    out: Vec<u8>,
    sent: usize,
}

impl<T> Lean<T> {
    pub(crate) fn new(io: T) -> Self {
        Self { io, out: Vec::new(), sent: 0 }
    }

    /// Bytes held for the next write, sent or not: what this socket's output costs now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.out.capacity()
    }

    /// Bytes gathered and not yet written.
    #[cfg(test)]
    pub(crate) fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }
}

impl<T: AsyncWrite + Unpin> Lean<T> {
    /// Writes out what is gathered; once all of it is sent the buffer is freed.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lean<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Lean<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // A client that stops reading holds the writer here, not an ever-growing buffer.
        if self.out.len() - self.sent >= HIGH_WATER {
            ready!(self.poll_send(cx))?;
        }
        // What a half-drained buffer already sent is dropped before it grows.
        if self.sent > 0 {
            let sent = self.sent;
            self.out.drain(..sent);
            self.sent = 0;
        }
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn joined(frames: impl Iterator<Item = Message>) -> (Vec<Frame>, String) {
        let frames: Vec<Frame> = frames
            .map(|m| match m {
                Message::Frame(f) => f,
                Message::Text(t) => Frame::message(Bytes::from(t), OpCode::Data(Data::Text), true),
                other => panic!("not a text frame: {other:?}"),
            })
            .collect();
        let text = frames.iter().map(|f| std::str::from_utf8(f.payload()).expect("whole characters")).collect();
        (frames, text)
    }

    #[test]
    fn a_short_event_is_one_text_frame() {
        let frames: Vec<_> = text_frames(Utf8Bytes::from("{\"type\":\"hello\"}")).collect();
        assert_eq!(frames, vec![Message::text("{\"type\":\"hello\"}")]);
        let exact = "x".repeat(FRAGMENT);
        assert_eq!(text_frames(Utf8Bytes::from(exact.clone())).collect::<Vec<_>>(), vec![Message::text(exact)]);
        assert_eq!(text_frames(Utf8Bytes::from("")).collect::<Vec<_>>(), vec![Message::text("")]);
    }

    #[test]
    fn a_long_event_is_cut_into_continuation_frames_on_character_boundaries() {
        // Three-byte characters never line up with the fragment size.
        let text = "€".repeat(FRAGMENT * 2) + "end";
        let (frames, rejoined) = joined(text_frames(Utf8Bytes::from(text.clone())));
        assert_eq!(rejoined, text);
        assert!(frames.len() > 6, "{} frames", frames.len());
        for (i, frame) in frames.iter().enumerate() {
            let header = frame.header();
            let expected = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            assert_eq!(header.opcode, expected, "frame {i}");
            assert_eq!(header.is_final, i == frames.len() - 1, "frame {i}");
            assert!(frame.payload().len() <= FRAGMENT && !frame.payload().is_empty(), "frame {i}");
        }
    }

    #[tokio::test]
    async fn lean_writes_on_flush_and_frees_its_buffer_once_sent() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut lean = Lean::new(client);
        lean.write_all(&[7u8; 40_000]).await.unwrap();
        lean.write_all(b"tail").await.unwrap();
        assert!(lean.held() >= 40_004, "gathered until flushed");
        let mut peek = [0u8; 1];
        assert!(server.read(&mut peek).now_or_never().is_none(), "nothing is written before the flush");
        lean.flush().await.unwrap();
        assert_eq!(lean.held(), 0, "the buffer is freed once sent");
        let mut got = vec![0u8; 40_004];
        server.read_exact(&mut got).await.unwrap();
        assert!(got[..40_000].iter().all(|&b| b == 7) && &got[40_000..] == b"tail");
    }

    #[tokio::test]
    async fn lean_waits_for_a_reader_that_stops_instead_of_growing() {
        // The connection takes 4 KiB and nobody reads it. A write `Lean` accepts is ready at
        // once (it takes all of it or none), so the first one that is not is where it waits.
        let (client, _server) = tokio::io::duplex(4096);
        let mut lean = Lean::new(client);
        let chunk = [1u8; 8192];
        let mut accepted = 0;
        while lean.write(&chunk).now_or_never().transpose().unwrap() == Some(chunk.len()) {
            accepted += chunk.len();
            assert!(accepted < 1 << 20, "the buffer keeps growing");
        }
        assert!(accepted >= HIGH_WATER, "accepted {accepted} before waiting");
        assert!(accepted <= 4096 + HIGH_WATER + chunk.len(), "accepted {accepted} before waiting");
        assert!(lean.unsent() <= HIGH_WATER + chunk.len(), "unsent {}", lean.unsent());
    }
}
