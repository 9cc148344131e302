//! The threads that serve connections ("lanes"): as many as the runtime has workers, each a
//! single-threaded runtime, so that a connection is read, answered and written on one thread
//! from accept to close.
//!
//! On the multi-threaded runtime a connection's task ran on whichever worker its socket's
//! readiness or the store's answer woke it on, and its buffers, its state and the allocator's
//! pages moved between the cores' caches with it. Opaque client credentials on 2 cores cost 23
//! µs of server CPU per token that way and 19 on lanes (61,000 and 71,000 tokens/s, wrk with 32
//! connections), ES256 ones 29 and 27.6 µs. A connection's HTTP/1 requests follow each other,
//! so a lane never takes parallelism from one connection. New connections go to the lanes in
//! turn. What a lane gives up is work stealing: a task that blocks its thread (a point read
//! waiting on another process's lock, up to about 10 s: the store's `point.rs`, which lets all
//! but one lane do so at once) or computes for long holds the other connections of its lane
//! meanwhile, their timeouts included; a lane that has not run its timers for [`STALLED`] gets
//! no new connection while another lane does. HTTP/2 multiplexes a client's requests on one
//! connection: its streams run on the multi-threaded runtime ([`Streams`]), so one HTTP/2
//! connection still uses every core.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How often a lane notes that its thread runs.
const TICK: Duration = Duration::from_millis(100);
/// A lane whose last tick is older gets no new connection while another lane ticks.
const STALLED: Duration = Duration::from_secs(1);

/// One lane: its runtime and when its thread last ran its timers.
struct Lane {
    runtime: Handle,
    /// Milliseconds since the lanes started, at the lane's last tick.
    ticked: Arc<AtomicU64>,
    /// Dropped with the lanes: the lane's thread then ends, and its runtime with it.
    _stop: oneshot::Sender<()>,
}

/// The lanes of a serving process.
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
    started: Instant,
}

impl Lanes {
    /// Starts `count` lanes (at least one), each on a thread of its own.
    pub fn start(count: usize) -> std::io::Result<Lanes> {
        let started = Instant::now();
        let lanes = (0..count.max(1))
            .map(|i| Lane::start(i, started))
            .collect::<Result<_, _>>()?;
        Ok(Lanes {
            lanes,
            next: AtomicUsize::new(0),
            started,
        })
    }

    /// Serves `tcp` with `serve` on the next lane in turn that has ticked within [`STALLED`].
    /// In turn, not by the lanes' load: a client that holds connections open on one lane
    /// cannot steer everyone else's onto another. A socket that cannot move to its lane (out of
    /// file descriptors for its new registration) is closed.
    pub fn serve<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let lane = self.pick();
        // A tokio socket belongs to the runtime it was registered with: the lane registers it.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => return not_handed(&e),
        };
        lane.runtime.spawn(async move {
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => not_handed(&e),
            }
        });
    }

    /// The next lane in turn, passing over those stalled (a thread blocked in a task: a point
    /// read waiting on another process's lock) while one is not.
    fn pick(&self) -> &Lane {
        let n = self.lanes.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = millis(self.started);
        let stalled = u64::try_from(STALLED.as_millis()).unwrap_or(u64::MAX);
        (0..n)
            .map(|k| &self.lanes[(first + k) % n])
            .find(|l| now.saturating_sub(l.ticked.load(Ordering::Relaxed)) <= stalled)
            .unwrap_or(&self.lanes[first])
    }
}

fn not_handed(e: &std::io::Error) {
    tracing::warn!(error = %e, "a connection could not be handed to a lane");
}

/// Milliseconds since `started`.
fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Lane {
    fn start(i: usize, started: Instant) -> std::io::Result<Lane> {
        let (sent, runtime) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let ticked = Arc::new(AtomicU64::new(millis(started)));
        let ticks = ticked.clone();
        std::thread::Builder::new()
            .name(format!("tessera-lane-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = sent.send(Err(e));
                        return;
                    }
                };
                let _ = sent.send(Ok(rt.handle().clone()));
                rt.spawn(async move {
                    loop {
                        ticks.store(millis(started), Ordering::Relaxed);
                        tokio::time::sleep(TICK).await;
                    }
                });
                let _ = rt.block_on(stopped);
            })?;
        let runtime = runtime
            .recv()
            .map_err(|_| std::io::Error::other("a lane's thread ended at start"))??;
        Ok(Lane {
            runtime,
            ticked,
            _stop: stop,
        })
    }
}

/// hyper's executor for HTTP/2 streams: each stream's request on the multi-threaded runtime
/// that accepted the connection, not on the connection's lane.
#[derive(Clone, Debug)]
pub struct Streams(pub Handle);

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::{Lanes, STALLED};

    /// Hands one connection to `lanes`, held open until its client closes it (`hold` blocks the
    /// lane's thread that long first); the name of the thread that served it.
    async fn one(
        lanes: &Lanes,
        listener: &TcpListener,
        hold: Duration,
    ) -> (String, tokio::net::TcpStream) {
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let (name, named) = tokio::sync::oneshot::channel();
        lanes.serve(tcp, move |mut tcp| async move {
            let _ = name.send(std::thread::current().name().unwrap_or_default().to_owned());
            std::thread::sleep(hold);
            let _ = tcp.read(&mut [0u8; 1]).await;
        });
        (named.await.unwrap(), client)
    }

    /// Connections go to the lanes in turn, on the lanes' threads, whatever each already
    /// serves; a lane whose thread is blocked gets none while the other ticks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_go_to_the_lanes_in_turn_past_a_stalled_one() {
        let lanes = Lanes::start(2).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut names = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (name, client) = one(&lanes, &listener, Duration::ZERO).await;
            names.push(name);
            clients.push(client);
        }
        assert_eq!(
            names,
            [
                "tessera-lane-0",
                "tessera-lane-1",
                "tessera-lane-0",
                "tessera-lane-1"
            ]
        );
        // Lane 0's thread blocked for longer than STALLED: the next connections all go to lane 1.
        let (name, _blocking) = one(&lanes, &listener, STALLED * 3).await;
        assert_eq!(name, "tessera-lane-0");
        tokio::time::sleep(STALLED + Duration::from_millis(300)).await;
        for _ in 0..3 {
            let (name, _client) = one(&lanes, &listener, Duration::ZERO).await;
            assert_eq!(name, "tessera-lane-1");
        }
    }
}
