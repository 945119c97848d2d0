//! Load generator for the export benchmark (`mailer/bench/export.sh`): `POST /mails` at a
//! fixed rate, each request with a new id, for D seconds. Prints one JSON line:
//! `{requests, accepted, other, errors, seconds, per_second, p50_ms, p90_ms, p99_ms, max_ms}`.
//!
//! The rate is fixed rather than "as fast as it goes" because the figure asked for is the
//! answer time of a service at work, not at saturation: a closed loop at saturation measures
//! its throughput, and its latency is then only the queue's length. Each request's time is
//! counted from when it was due, not from when it left, so a stalled mailer cannot hide
//! behind a loader that waited for it.
//!
//! Usage: `post_mails_load <base-url> <token> <requests-per-second> <seconds>`

use domain::{Email, Locale, MailRequest, Recipient, Template};
use std::time::{Duration, Instant};

fn body() -> Vec<u8> {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), "ada".into());
    let to = Recipient {
        email: Email::parse("ada@example.com").expect("a valid address"),
        name: "Ada Lovelace".into(),
    };
    let request =
        MailRequest::new(Template::WELCOME, Locale::EN, to, vars).expect("a valid request");
    serde_json::to_vec(&request).expect("a request serializes")
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// What one request came to.
enum Outcome {
    Accepted,
    Other,
    Error,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:18080".into());
    let token = args.get(2).cloned().unwrap_or_default();
    let rate: u32 = arg(&args, 3, 1000).max(1);
    let seconds: u64 = arg(&args, 4, 10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(base, token, rate, Duration::from_secs(seconds)));
}

async fn run(base: String, token: String, rate: u32, length: Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        .build()
        .expect("an HTTP client");
    let url = format!("{base}/mails");
    let period = Duration::from_secs(1) / rate;
    let total = (length.as_secs_f64() * f64::from(rate)) as u64;
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + period * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let call = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body());
        requests.push(tokio::spawn(async move {
            let outcome = match call.send().await {
                Ok(answer) if answer.status() == reqwest::StatusCode::ACCEPTED => {
                    // The body is read so that the connection goes back to the pool.
                    let _ = answer.bytes().await;
                    Outcome::Accepted
                }
                Ok(answer) => {
                    let _ = answer.bytes().await;
                    Outcome::Other
                }
                Err(_) => Outcome::Error,
            };
            (due.elapsed(), outcome)
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    let (mut accepted, mut other, mut errors) = (0usize, 0usize, 0usize);
    for request in requests {
        match request.await {
            Ok((latency, outcome)) => {
                latencies.push(latency);
                match outcome {
                    Outcome::Accepted => accepted += 1,
                    Outcome::Other => other += 1,
                    Outcome::Error => errors += 1,
                }
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let q = |p: f64| ms(latencies.get(((latencies.len() as f64) * p) as usize));
    println!(
        "{{\"requests\":{},\"accepted\":{accepted},\"other\":{other},\"errors\":{errors},\"seconds\":{elapsed:.2},\"per_second\":{:.0},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        q(0.5),
        q(0.9),
        q(0.99),
        ms(latencies.last()),
    );
}
