//! Load generator for the mailer benchmark (`mailer/bench/run.sh` with `LOADER=rust`): C
//! socket.io clients of the transport crate's own client, each keeping W `send-mail`
//! requests in flight for D seconds. Prints the same JSON line as `send_mail_load.js`:
//! `{acks, accepted, other, seconds, per_second, p50_ms, p99_ms, max_ms}`.
//!
//! It exists because the Node.js generator is one thread that must also parse every
//! broadcast the mailer sends back; on two cores it takes CPU the mailer would use. This one
//! runs on a single Tokio thread as well, so the two loaders compete for the same share.
//!
//! Usage: `send_mail_load <base-url> <token> <clients> <window> <seconds>`

use domain::config::SocketIoConfig;
use domain::{Email, Locale, MailRequest, MailStatus, Recipient, Secret, Template};
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::socketio::SocketIoPublisher;
use transport::{Receipt, Transport};

fn request() -> MailRequest {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), "ada".into());
    let to = Recipient {
        email: Email::parse("ada@example.com").expect("a valid address"),
        name: "Ada Lovelace".into(),
    };
    MailRequest::new(Template::WELCOME, Locale::EN, to, vars).expect("a valid request")
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = SocketIoConfig {
        url: args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:18080".into()),
        token: Secret::new(args.get(2).cloned().unwrap_or_default()),
    };
    let clients: usize = arg(&args, 3, 2);
    let window: usize = arg(&args, 4, 16);
    let seconds: u64 = arg(&args, 5, 10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(config, clients, window, Duration::from_secs(seconds)));
}

async fn run(config: SocketIoConfig, clients: usize, window: usize, length: Duration) {
    let mut publishers = Vec::new();
    for _ in 0..clients {
        let publisher = SocketIoPublisher::builder(&config)
            .max_in_flight(window)
            .ack_timeout(Duration::from_secs(10))
            .start();
        if !publisher.wait_until_connected(Duration::from_secs(5)).await {
            eprintln!("could not connect to {} within 5 s", config.url);
            std::process::exit(1);
        }
        publishers.push(Arc::new(publisher));
    }
    let started = Instant::now();
    let stop_at = started + length;
    let mut lanes = Vec::new();
    for publisher in &publishers {
        for _ in 0..window {
            let publisher = publisher.clone();
            lanes.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut accepted = 0usize;
                while Instant::now() < stop_at {
                    let sent = Instant::now();
                    let receipt = publisher.publish(&request()).await;
                    latencies.push(sent.elapsed());
                    if let Ok(Receipt::Answered(answer)) = receipt
                        && answer.status == MailStatus::Accepted
                    {
                        accepted += 1;
                    }
                }
                (latencies, accepted)
            }));
        }
    }
    let mut latencies = Vec::new();
    let mut accepted = 0;
    for lane in lanes {
        if let Ok((mut l, a)) = lane.await {
            latencies.append(&mut l);
            accepted += a;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let q = |p: f64| ms(latencies.get(((latencies.len() as f64) * p) as usize));
    println!(
        "{{\"acks\":{},\"accepted\":{},\"other\":{},\"seconds\":{:.2},\"per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        latencies.len(),
        accepted,
        latencies.len() - accepted,
        elapsed,
        latencies.len() as f64 / elapsed,
        q(0.5),
        q(0.99),
        ms(latencies.last()),
    );
}
