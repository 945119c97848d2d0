//! Measures one Argon2id hash's time for OWASP-listed parameter sets, to size `POST /users`
//! throughput (cores ÷ one hash's time) and to choose the parameters in `src/hashing.rs`.
//!
//! `cargo run --release -p users --example hash_cost`

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use std::time::Instant;

fn main() {
    // (m KiB, t, p) from the OWASP Password Storage Cheat Sheet's Argon2id list.
    for (m, t, p) in [
        (47104, 1, 1),
        (19456, 2, 1),
        (12288, 3, 1),
        (9216, 4, 1),
        (7168, 5, 1),
    ] {
        let Ok(params) = Params::new(m, t, p, None) else {
            eprintln!("invalid parameters m={m} t={t} p={p}");
            continue;
        };
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let rounds = 40;
        let started = Instant::now();
        for _ in 0..rounds {
            if argon2
                .hash_password(b"correct horse battery staple")
                .is_err()
            {
                eprintln!("hashing failed");
                return;
            }
        }
        let each = started.elapsed().as_secs_f64() / f64::from(rounds);
        println!(
            "m={m:>5} KiB t={t} p={p}: {:.2} ms per hash, {:.0} hashes/s per core",
            each * 1000.0,
            1.0 / each
        );
    }
}
