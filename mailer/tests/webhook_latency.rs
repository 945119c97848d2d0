//! A black-holed webhook endpoint does not slow `POST /mails` down: the 99th percentile of
//! its answer times, with three endpoints that accept connections and never answer, is
//! compared with the same mailer's without them, phases alternated.
//!
//! A test binary of its own: cargo runs test binaries one after the other, so no other mailer
//! test shares the machine while it measures. The figures it prints are written in
//! docs/BENCHMARKS.md.

mod common;

use common::{MailerProcess, mail_request};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Requests per phase, one after the other.
const PER_PHASE: usize = 300;

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() * 99 / 100]
}

async fn answer_times(http: &reqwest::Client, mailer: &MailerProcess) -> Vec<Duration> {
    let mut times = Vec::with_capacity(PER_PHASE);
    for _ in 0..PER_PHASE {
        let started = Instant::now();
        let answer = http
            .post(format!("{}/mails", mailer.base))
            .bearer_auth(&mailer.token)
            .json(&mail_request("welcome", "en"))
            .send()
            .await
            .expect("an answer");
        times.push(started.elapsed());
        assert_eq!(answer.status(), 202);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    times
}

/// A listener that accepts every connection and never reads or answers; counts them in
/// `accepted`.
async fn black_hole(accepted: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_endpoint_does_not_slow_accepting_mail() {
    let mailer =
        MailerProcess::start(&[("FACTEUR_MAILER__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")]).await;
    let http = reqwest::Client::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let holes = [
        black_hole(accepted.clone()).await,
        black_hole(accepted.clone()).await,
        black_hole(accepted.clone()).await,
    ];
    answer_times(&http, &mailer).await;
    let (mut alone, mut holed) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        alone.extend(answer_times(&http, &mailer).await);
        let mut hooks = Vec::new();
        for url in &holes {
            let created: Value = http
                .post(format!("{}/webhooks", mailer.base))
                .bearer_auth(&mailer.token)
                .json(&json!({"url": url}))
                .send()
                .await
                .expect("POST /webhooks")
                .json()
                .await
                .expect("a body");
            hooks.push(created["id"].as_str().expect("an id").to_string());
        }
        holed.extend(answer_times(&http, &mailer).await);
        for hook in hooks {
            let deleted = http
                .delete(format!("{}/webhooks/{hook}", mailer.base))
                .bearer_auth(&mailer.token)
                .send()
                .await
                .expect("DELETE");
            assert_eq!(deleted.status(), 204);
        }
    }
    mailer.kill().await;
    let (alone, holed) = (p99(alone), p99(holed));
    println!("POST /mails p99: {alone:?} without endpoints, {holed:?} with 3 black-holed ones");
    assert!(
        accepted.load(Ordering::Relaxed) >= 3,
        "the mailer connected to every black hole"
    );
    assert!(
        holed <= alone * 3 + Duration::from_millis(10),
        "p99 of POST /mails: {holed:?} with black-holed endpoints, {alone:?} without"
    );
}
