//! The threads that serve connections ("lanes"): as many as the runtime has workers, each a
//! single-threaded runtime, so that a connection is read, answered and written on one thread
//! from accept to close.
//!
//! On the multi-threaded runtime a connection's task ran on whichever worker its socket's
//! readiness or the store's answer woke it on, and its buffers, its state and the allocator's
//! pages moved between the cores' caches with it. Opaque client credentials on 2 cores cost 23
//! µs of server CPU per token that way and 19 on lanes (61,000 and 71,000 tokens/s, wrk with 32
//! connections), ES256 ones 29 and 27.6 µs. A connection's HTTP/1 requests follow each other,
//! so a lane never takes parallelism from one connection; a new connection goes to the lane with
//! the fewest open. What a lane gives up is work stealing: a task that blocks its thread (a
//! point read waiting on another process's lock, the store's `point.rs`, which lets all but one
//! lane do so at once) or computes for long holds the other connections of its lane meanwhile.
//! HTTP/2 multiplexes a client's requests on one connection: its streams run on the
//! multi-threaded runtime ([`Streams`]), so one HTTP/2 connection still uses every core.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One lane: its runtime and how many connections it serves.
struct Lane {
    runtime: Handle,
    open: Arc<AtomicUsize>,
    /// Dropped with the lanes: the lane's thread then ends, and its runtime with it.
    _stop: oneshot::Sender<()>,
}

/// The lanes of a serving process.
pub struct Lanes(Vec<Lane>);

impl Lanes {
    /// Starts `count` lanes (at least one), each on a thread of its own.
    pub fn start(count: usize) -> std::io::Result<Lanes> {
        (0..count.max(1))
            .map(Lane::start)
            .collect::<Result<_, _>>()
            .map(Lanes)
    }

    /// Serves `tcp` with `serve` on the lane with the fewest open connections. A socket that
    /// cannot move to it (out of file descriptors for its new registration) is closed.
    pub fn serve<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(lane) = self.0.iter().min_by_key(|l| l.open.load(Ordering::Relaxed)) else {
            return;
        };
        // A tokio socket belongs to the runtime it was registered with: the lane registers it.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "a connection could not be handed to a lane");
                return;
            }
        };
        let open = Open::count(&lane.open);
        lane.runtime.spawn(async move {
            let _open = open;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => tracing::warn!(error = %e, "a connection could not be handed to a lane"),
            }
        });
    }

    /// How many connections each lane serves.
    pub fn open(&self) -> Vec<usize> {
        self.0
            .iter()
            .map(|l| l.open.load(Ordering::Relaxed))
            .collect()
    }
}

impl Lane {
    fn start(i: usize) -> std::io::Result<Lane> {
        let (started, runtime) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("tessera-lane-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(rt.handle().clone()));
                let _ = rt.block_on(stopped);
            })?;
        let runtime = runtime
            .recv()
            .map_err(|_| std::io::Error::other("a lane's thread ended at start"))??;
        Ok(Lane {
            runtime,
            open: Arc::new(AtomicUsize::new(0)),
            _stop: stop,
        })
    }
}

/// One open connection of a lane while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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

    use super::Lanes;

    /// Connections spread over the lanes by how many each serves, run on the lanes' threads,
    /// and leave their count when they close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_go_to_the_least_busy_lane() {
        let lanes = Lanes::start(2).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (threads, mut ran) = tokio::sync::mpsc::unbounded_channel();
        let mut clients = Vec::new();
        let mut names = Vec::new();
        for _ in 0..3 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            let (tcp, _) = listener.accept().await.unwrap();
            let threads = threads.clone();
            lanes.serve(tcp, move |mut tcp| async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = threads.send(name);
                // Until the client closes.
                let _ = tcp.read(&mut [0u8; 1]).await;
            });
            names.push(ran.recv().await.flatten().unwrap_or_default());
        }
        let mut open = lanes.open();
        open.sort_unstable();
        assert_eq!(open, vec![1, 2]);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names, ["tessera-lane-0", "tessera-lane-1"]);
        drop(clients);
        for _ in 0..100 {
            if lanes.open() == vec![0, 0] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "connections still counted after closing: {:?}",
            lanes.open()
        );
    }
}
