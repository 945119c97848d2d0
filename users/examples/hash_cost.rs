//! Measures one Argon2id hash's time for OWASP-listed parameter sets, to size `POST /users`
//! throughput (cores ÷ one hash's CPU time) and to choose the parameters in `src/hashing.rs`.
//!
//! Each hash reuses one buffer, as the service does. "one core" runs the lanes one after the
//! other on a single thread: that is a hash's CPU time. "lanes in parallel" runs them on one
//! thread per core, as the service does with p = 2: that is a hash's wall time.
//!
//! `cargo run --release -p users --example hash_cost`

use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::time::Instant;

fn time_per_hash(argon2: &Argon2<'_>, memory: &mut [Block], threads: usize) -> Option<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .ok()?;
    let rounds = 40;
    let mut out = [0u8; 32];
    let started = Instant::now();
    for _ in 0..rounds {
        pool.install(|| {
            argon2.hash_password_into_with_memory(
                b"correct horse battery staple",
                b"sixteen byte slt",
                &mut out,
                &mut *memory,
            )
        })
        .ok()?;
    }
    Some(started.elapsed().as_secs_f64() / f64::from(rounds))
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // (m KiB, t, p): the OWASP Password Storage Cheat Sheet's Argon2id list (p = 1), and the
    // service's setting (7168, 5, 2).
    for (m, t, p) in [
        (47104, 1, 1),
        (19456, 2, 1),
        (12288, 3, 1),
        (9216, 4, 1),
        (7168, 5, 1),
        (7168, 5, 2),
    ] {
        let Ok(params) = Params::new(m, t, p, Some(32)) else {
            eprintln!("invalid parameters m={m} t={t} p={p}");
            continue;
        };
        let mut memory = vec![Block::new(); params.block_count()];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let Some(one_core) = time_per_hash(&argon2, &mut memory, 1) else {
            eprintln!("hashing failed");
            return;
        };
        print!(
            "m={m:>5} KiB t={t} p={p}: one core {:.2} ms per hash ({:.0} hashes/s on {cores} cores)",
            one_core * 1000.0,
            cores as f64 / one_core
        );
        if p > 1 {
            let Some(parallel) = time_per_hash(&argon2, &mut memory, cores) else {
                eprintln!("hashing failed");
                return;
            };
            print!(", lanes in parallel {:.2} ms per hash", parallel * 1000.0);
        }
        println!();
    }
}
