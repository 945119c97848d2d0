//! `/live` never delays the answer to the sender, however many browsers watch it.
//!
//! A test binary of its own: it compares two medians of answer times, and cargo runs test
//! binaries one after the other, so no other mailer test shares the machine while it measures.

mod common;

use common::MailerProcess;
use common::mail_request;
use common::raw_ws::RawWs;
use domain::{MailRequest, MailStatus, Secret};
use std::time::{Duration, Instant};
use transport::socketio::SocketIoPublisher;
use transport::{Receipt, Transport};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Sends `count` requests one after the other, each once the previous is answered and the
/// events it caused had time to go out (what is measured is the request's own path, not
/// its share of a busy machine), and returns each answer's wait.
async fn ack_times(publisher: &SocketIoPublisher, count: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let request = MailRequest::from_value(mail_request("welcome", "en")).unwrap();
        let started = Instant::now();
        let receipt = publisher.publish(&request).await.expect("an answer");
        times.push(started.elapsed());
        assert!(
            matches!(&receipt, Receipt::Answered(a) if a.status == MailStatus::Accepted),
            "{receipt:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times
}

/// Against the real binary, which runs on its own worker thread as in production, while
/// this process holds the 2,000 sockets and reads what they receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_live_sockets_do_not_delay_the_senders_answer() {
    let mailer = MailerProcess::start(&[]).await;
    let publisher = SocketIoPublisher::start(&domain::config::SocketIoConfig {
        url: mailer.base.clone(),
        token: Secret::new(mailer.token.clone()),
    });
    assert!(publisher.wait_until_connected(Duration::from_secs(5)).await);
    ack_times(&publisher, 10).await;
    let alone = median(ack_times(&publisher, 25).await);

    let mut watchers = Vec::new();
    for _ in 0..2000 {
        let ws = RawWs::connect(&mailer.addr)
            .await
            .expect("a /live websocket");
        watchers.push(tokio::spawn(ws.idle_in("/live")));
    }
    let connected = testkit::eventually(Duration::from_secs(20), || async {
        mailer
            .metrics()
            .await
            .contains("socketio_connected_clients{namespace=\"/live\"} 2000")
    })
    .await;
    assert!(connected, "2,000 /live sockets connect within 20 s");
    ack_times(&publisher, 5).await;
    let watched = median(ack_times(&publisher, 25).await);
    for watcher in &watchers {
        watcher.abort();
    }
    publisher.close().await;
    mailer.kill().await;

    assert!(
        watched <= alone + Duration::from_millis(2),
        "the median answer took {watched:?} with 2,000 /live sockets, {alone:?} without"
    );
}
