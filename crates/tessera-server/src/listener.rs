//! Serving connections on a listener, with the limits a public server needs (the review found
//! silent and header-dribbling connections held open indefinitely until the file descriptors ran
//! out): at most `max_connections` at once (further ones wait in the listen queue), the bytes
//! that tell the protocol (an HTTP/1 request line, or HTTP/2's preface) and an HTTP/1 request's
//! header section each within `header_read_timeout`, so a connection that sends nothing or
//! dribbles is closed then (and an HTTP/1 keep-alive connection waiting for its next request,
//! whose wait hyper counts as reading a header); a connection with no request in flight closed
//! after `idle_timeout` (HTTP/2, and HTTP/1 should that ever be longer), and on shutdown every
//! connection drained: in-flight requests answered in full. A closing connection with no request
//! in flight gets `header_read_timeout` to go (an HTTP/2 peer acknowledging the GOAWAY), one
//! with a request the request timeout. Over TLS a connection speaks the protocol its handshake
//! agreed on (ALPN); in cleartext its first bytes tell.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::lanes::{Lanes, Streams};

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a stopping server lets a connection finish its requests.
    pub drain_timeout: Duration,
    /// The largest HTTP/2 header list a stream may send (`SETTINGS_MAX_HEADER_LIST_SIZE`):
    /// [`ConnectionLimits::http2_header_list`].
    pub http2_header_list: u32,
}

impl ConnectionLimits {
    /// Room in HTTP/2's count for a request the front middleware would pass. RFC 9113 §6.5.2
    /// counts 32 bytes a field and the pseudo-fields (the target among them), where the
    /// middleware counts 4 bytes a field and leaves the target to its own limit: so the
    /// middleware judges, with the same answer as on HTTP/1 (hyper's own default, 16 KiB, is
    /// below the default `http.max_header_bytes`). 100 fields, as hyper allows on HTTP/1.
    pub fn http2_header_list(max_header_bytes: usize, max_uri_bytes: usize) -> u32 {
        let room = max_header_bytes
            .saturating_add(max_uri_bytes)
            .saturating_add(100 * 32);
        u32::try_from(room).unwrap_or(u32::MAX)
    }
}

/// A connection's requests in flight, and when that number last changed.
#[derive(Debug)]
struct Activity(Mutex<(usize, Instant)>);

impl Activity {
    fn read(&self) -> (usize, Instant) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change(&self, by: isize) {
        let mut a = self.0.lock().unwrap_or_else(|p| p.into_inner());
        a.0 = a.0.saturating_add_signed(by);
        a.1 = Instant::now();
    }
}

/// One request in flight while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(a: &Arc<Activity>) -> InFlight {
        a.change(1);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.change(-1);
    }
}

/// Serves `router` on `listener` (over TLS with `tls`), each connection on one of `lanes`, until
/// `stop` changes, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    lanes: &Lanes,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(Streams(tokio::runtime::Handle::current()));
    // Without a timer hyper silently drops its header-read timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_header_list_size(limits.http2_header_list)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let builders = Arc::new(Builders {
        h1: builder.clone().http1_only(),
        h2: builder.clone().http2_only(),
        either: builder,
    });
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // A slot first: at the limit, new connections wait in the kernel's listen queue.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) => continue,
                Err(e) => {
                    // Out of file descriptors or buffers: back off instead of spinning.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = match make.call(peer).await {
            Ok(app) => app,
            Err(never) => match never {},
        };
        let accepted = Accepted {
            builders: builders.clone(),
            tls: tls.clone(),
            limits,
            slot: permit,
        };
        let stop = stop.clone();
        lanes.serve(tcp, move |tcp| connection(accepted, tcp, app, stop));
    }
    drop(listener);
    // Every open connection holds a slot: all slots back means every connection is done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        limits.drain_timeout + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await;
}

/// HTTP/2's connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the connection, within `limit`, sent enough to tell its protocol: the whole HTTP/2
/// preface, or a first byte that departs from it (HTTP/1). hyper's own header-read timeout
/// starts only once the protocol is known, so a silent or preface-dribbling peer is judged here.
async fn protocol_known(tcp: &TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut seen = [0u8; PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut seen)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return false,
        };
        if n == 0 {
            return false;
        }
        if n == PREFACE.len() || seen[..n] != PREFACE[..n] {
            return true;
        }
        // Part of the preface: wait for more bytes. Peeking left the socket marked readable;
        // clearing the mark makes the wait end only when new bytes arrive.
        let _ = tcp.try_io(tokio::io::Interest::READABLE, || {
            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
        });
        if tokio::time::timeout_at(deadline, tcp.readable())
            .await
            .is_err()
        {
            return false;
        }
    }
}

/// The router as one connection serves it: with the peer's address as `ConnectInfo`.
type App = axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>;

/// hyper's connection builders, one per protocol a connection may be served with.
struct Builders {
    /// Told by the connection's first bytes: cleartext HTTP/1, or HTTP/2 with prior knowledge.
    either: auto::Builder<Streams>,
    h1: auto::Builder<Streams>,
    h2: auto::Builder<Streams>,
}

impl Builders {
    /// RFC 9113 §3.2 and RFC 7301 §3.2: over TLS, the protocol the handshake agreed on (ALPN),
    /// HTTP/1.1 when it agreed on none.
    fn for_alpn(&self, alpn: Option<&[u8]>) -> &auto::Builder<Streams> {
        match alpn {
            Some(b"h2") => &self.h2,
            _ => &self.h1,
        }
    }
}

/// What every accepted connection is served with.
struct Accepted {
    builders: Arc<Builders>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    /// Held while the connection lives.
    slot: OwnedSemaphorePermit,
}

/// Serves one connection (its TLS handshake first, within the header-read timeout), closing it
/// when idle or when the server stops.
async fn connection(accepted: Accepted, tcp: TcpStream, app: App, mut stop: watch::Receiver<bool>) {
    let limits = accepted.limits;
    let known = tokio::select! {
        known = protocol_known(&tcp, limits.header_read_timeout) => known,
        _ = stop.changed() => false,
    };
    if !known {
        return;
    }
    match &accepted.tls {
        None => {
            let builder = &accepted.builders.either;
            serve_io(&accepted, builder, tcp, None, app, stop).await
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
            let stream = tokio::select! {
                s = handshake => match s {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                _ = stop.changed() => return,
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::mtls::PeerCertificate(Arc::new(c.as_ref().to_vec())));
            let builder = accepted
                .builders
                .for_alpn(stream.get_ref().1.alpn_protocol());
            serve_io(&accepted, builder, stream, peer, app, stop).await
        }
    }
}

/// Serves the requests of one connection's byte stream with `builder`; each request carries the
/// client certificate of the TLS connection, when it presented one.
async fn serve_io<I>(
    accepted: &Accepted,
    builder: &auto::Builder<Streams>,
    io: I,
    peer: Option<crate::mtls::PeerCertificate>,
    app: App,
    mut stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = accepted.limits;
    let _slot = &accepted.slot;
    let opened = Instant::now();
    let activity = Arc::new(Activity(Mutex::new((0, opened))));
    let service = {
        let activity = activity.clone();
        tower::service_fn(move |mut req: http::Request<Incoming>| {
            let in_flight = InFlight::enter(&activity);
            let app = app.clone();
            if let Some(p) = &peer {
                req.extensions_mut().insert(p.clone());
            }
            async move {
                let res = app.oneshot(req).await;
                drop(in_flight);
                res
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    // One timer: the first request's deadline, then the idle check while open, the drain
    // deadline once closing. Over TLS the protocol is told apart only after the handshake, on
    // the decrypted stream, so a connection that sends no request is judged here too.
    let timer = tokio::time::sleep(limits.header_read_timeout.min(limits.idle_timeout));
    tokio::pin!(timer);
    // Since when the connection is closing.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed(), if closing.is_none() => {
                // HTTP/1: close after the exchange in progress; HTTP/2: GOAWAY.
                conn.as_mut().graceful_shutdown();
                let now = Instant::now();
                closing = Some(now);
                timer.as_mut().reset(closed_by(now, activity.read().0, &limits));
            }
            () = timer.as_mut() => {
                let (in_flight, since) = activity.read();
                if let Some(began) = closing {
                    let deadline = closed_by(began, in_flight, &limits);
                    if deadline <= Instant::now() {
                        // Past the deadline: dropping the connection closes its socket.
                        return;
                    }
                    timer.as_mut().reset(deadline);
                    continue;
                }
                let never_asked = in_flight == 0 && since == opened;
                if never_asked || (in_flight == 0 && since.elapsed() >= limits.idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    let now = Instant::now();
                    closing = Some(now);
                    timer.as_mut().reset(closed_by(now, in_flight, &limits));
                } else if in_flight == 0 {
                    timer.as_mut().reset(since + limits.idle_timeout);
                } else {
                    timer.as_mut().reset(Instant::now() + limits.idle_timeout);
                }
            }
        }
    }
}

/// When a connection closing since `began` is closed whatever it is doing: after the drain
/// timeout while a request is in flight; else once it has had as long as a header section gets
/// (an HTTP/2 peer that never acknowledged the GOAWAY's PING, with no request, held its slot for
/// the whole drain timeout).
fn closed_by(began: Instant, in_flight: usize, limits: &ConnectionLimits) -> Instant {
    if in_flight > 0 {
        began + limits.drain_timeout
    } else {
        began + limits.header_read_timeout.min(limits.drain_timeout)
    }
}
