//! The raw argon2id rate of this machine: `THREADS` threads (default: every core) each compute
//! argon2id with the parameters of Tessera's password hashes (`password::hash`: the argon2
//! crate's defaults, 19 MiB, 2 passes) for `SECONDS` seconds, reusing their working memory, and
//! nothing else; prints computations per second. `bench/scale.py` compares sign-ins with it.
//!
//!     cargo run --release -p tessera-core --example argon2_rate -- [SECONDS] [THREADS]

// A measuring tool: any failure is a broken measurement and stops it.
#![allow(clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let threads: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let phc = tessera_core::password::hash("correct horse battery").expect("hash");
    assert!(phc.contains("m=19456,t=2,p=1"), "{phc}");
    let params = argon2::Params::default();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (params, done, stop) = (params.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let a = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params.clone(),
                );
                let mut memory = vec![argon2::Block::default(); params.block_count()];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    a.hash_password_into_with_memory(
                        b"correct horse battery",
                        b"sixteen byte salt",
                        &mut out,
                        &mut memory,
                    )
                    .expect("argon2");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("{rate:.1}");
}
