//! Whole-stack figures, per transport: the release `users` and `mailer` binaries, a real SMTP
//! server in process, RabbitMQ for AMQP.
//!
//! Run: `cargo build --release -p users -p mailer --bins && cargo bench --bench stack`
//! (`-- socketio` or `-- amqp` for one transport). It prints one block per transport:
//! - accounts created per second until the last welcome mail reached SMTP (each create
//!   hashes a password with Argon2id, so this is bounded by hashing);
//! - 5,000 mail requests end to end (PATCHes that change a name: no hashing), mails per
//!   second from the first request to the last mail, and the time from the last request to
//!   the last mail;
//! - both services' peak resident memory (VmHWM).

#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::stack::{Kind, Stack};
use testkit::smtp::SmtpSink;

const ACCOUNTS: usize = 200;
const CHANGES: usize = 5_000;
const CONCURRENCY: usize = 32;

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User and system CPU the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, the 12th and 13th after the name; Linux
    // counts them in units of 1/100 s (USER_HZ).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

async fn run_concurrently<F, Fut>(total: usize, job: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (job, next) = (job.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return;
                }
                job(n).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn bench(kind: Kind) {
    let stack = Arc::new(Stack::start(kind, SmtpSink::start()).await);

    let started = Instant::now();
    {
        let stack = stack.clone();
        run_concurrently(ACCOUNTS, move |n| {
            let stack = stack.clone();
            async move {
                stack.create_user(&format!("bench{n}")).await;
            }
        })
        .await;
    }
    let created = started.elapsed();
    stack
        .smtp
        .wait_for(ACCOUNTS, Duration::from_secs(300))
        .await;
    let welcomed = started.elapsed();

    let listed: serde_json::Value = stack
        .users_admin(Method::GET, "/users?per_page=100")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let ids: Arc<Vec<String>> = Arc::new(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_string())
            .collect(),
    );
    let (users_pid, mailer_pid) = stack.pids();
    let cpu_before = cpu_time(users_pid) + cpu_time(mailer_pid);
    let started = Instant::now();
    {
        let (stack, ids) = (stack.clone(), ids.clone());
        run_concurrently(CHANGES, move |n| {
            let (stack, ids) = (stack.clone(), ids.clone());
            async move {
                let id = &ids[n % ids.len()];
                let response = stack
                    .users_admin(Method::PATCH, &format!("/users/{id}"))
                    .json(&json!({"first_name": format!("Name{n}")}))
                    .send()
                    .await
                    .expect("PATCH");
                assert!(
                    response.status().is_success(),
                    "PATCH answered {}",
                    response.status()
                );
            }
        })
        .await;
    }
    let requested = started.elapsed();
    let mails = stack
        .smtp
        .wait_for(ACCOUNTS + CHANGES, Duration::from_secs(300))
        .await;
    let delivered = started.elapsed();
    let cpu = cpu_time(users_pid) + cpu_time(mailer_pid) - cpu_before;
    println!("== whole stack, transport {}", kind.as_str());
    println!(
        "accounts: {ACCOUNTS} created in {:.2} s ({:.0}/s); last welcome mail at {:.2} s ({:.0} accounts/s until their mail)",
        created.as_secs_f64(),
        ACCOUNTS as f64 / created.as_secs_f64(),
        welcomed.as_secs_f64(),
        ACCOUNTS as f64 / welcomed.as_secs_f64()
    );
    println!(
        "mail requests: {CHANGES} PATCHes in {:.2} s ({:.0} requests/s); {} mails in all, last one {:.2} s after the first request ({:.0} mails/s end to end); last request to last mail {:.0} ms",
        requested.as_secs_f64(),
        CHANGES as f64 / requested.as_secs_f64(),
        mails.len(),
        delivered.as_secs_f64(),
        CHANGES as f64 / delivered.as_secs_f64(),
        (delivered - requested).as_secs_f64() * 1000.0
    );
    println!(
        "CPU per mail request, both services, request to SMTP: {:.3} ms ({:.2} s for {CHANGES})",
        cpu.as_secs_f64() * 1000.0 / CHANGES as f64,
        cpu.as_secs_f64()
    );
    println!(
        "peak resident memory: users {} KiB, mailer {} KiB",
        peak_rss_kib(users_pid),
        peak_rss_kib(mailer_pid)
    );
}

fn main() {
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "socketio" || a == "amqp");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for kind in [Kind::Socketio, Kind::Amqp] {
        if only.as_deref().is_none_or(|o| o == kind.as_str()) {
            runtime.block_on(bench(kind));
        }
    }
}
