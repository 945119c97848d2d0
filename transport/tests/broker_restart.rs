//! The broker-restart test: RabbitMQ's app is stopped and started (`rabbitmqctl stop_app` /
//! `start_app`) under a running publisher and consumer, which must both come back by
//! themselves with every request answered and none lost.
//!
//! It stops the broker for every process on the machine, so it lives in its own test binary
//! (cargo runs test binaries one after another) and a guard restarts the app even when the
//! test fails.

mod common;
#[path = "conformance/handler.rs"]
#[allow(dead_code)] // the suite uses more of the double than this test does
mod handler;

use common::{isolated_amqp_config, rabbitmq_is_reachable, welcome_request};
use futures_util::future::join_all;
use handler::RecordingHandler;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::report as say;
use transport::amqp::{AmqpConsumer, AmqpPublisher};
use transport::{LinkState, Receipt, Transport};

/// Starts the RabbitMQ app again when dropped, and waits until it accepts connections.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .arg("start_app")
            .output();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(testkit::skip::RABBITMQ.1).is_err()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

async fn rabbitmqctl(command: &str) {
    let output = tokio::process::Command::new("rabbitmqctl")
        .arg(command)
        .output()
        .await
        .unwrap_or_else(|e| panic!("rabbitmqctl {command} could not run: {e}"));
    assert!(
        output.status.success(),
        "rabbitmqctl {command} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn wait_until<F: Fn() -> bool>(what: &str, within: Duration, condition: F) {
    assert!(
        testkit::eventually(within, || std::future::ready(condition())).await,
        "{what} did not happen within {within:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_publisher_and_consumer_recover_after_a_broker_restart_and_nothing_is_lost() {
    let test = "amqp_publisher_and_consumer_recover_after_a_broker_restart_and_nothing_is_lost";
    if !rabbitmq_is_reachable(test).await {
        return;
    }
    if std::process::Command::new("rabbitmqctl")
        .arg("status")
        .output()
        .is_err()
    {
        testkit::skip_or_fail(test, "rabbitmqctl is not available to restart the broker");
        return;
    }
    let config = isolated_amqp_config();
    let handler = Arc::new(RecordingHandler::new());
    let consumer = AmqpConsumer::start(&config, handler.clone());
    let publisher = AmqpPublisher::start_with_timeout(&config, Duration::from_secs(2));
    assert!(consumer.wait_until_connected(Duration::from_secs(10)).await);
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await
    );
    let before: Vec<_> = (0..100)
        .map(|i| welcome_request(&format!("b{i}@example.com")))
        .collect();
    for receipt in join_all(before.iter().map(|r| publisher.publish(r))).await {
        assert_eq!(
            receipt.expect("publish before the restart"),
            Receipt::Confirmed
        );
    }

    let guard = BrokerGuard;
    rabbitmqctl("stop_app").await;
    wait_until(
        "the publisher noticing the broker is down",
        Duration::from_secs(10),
        || publisher.state() == LinkState::Disconnected,
    )
    .await;
    wait_until(
        "the consumer noticing the broker is down",
        Duration::from_secs(10),
        || consumer.state() == LinkState::Disconnected,
    )
    .await;
    let started = Instant::now();
    let down = publisher
        .publish(&welcome_request("down@example.com"))
        .await;
    assert!(down.as_ref().is_err_and(|e| e.is_retryable()), "{down:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "publish hung while the broker was down"
    );
    rabbitmqctl("start_app").await;
    drop(guard);

    let after: Vec<_> = (0..100)
        .map(|i| welcome_request(&format!("a{i}@example.com")))
        .collect();
    for request in &after {
        let published = testkit::eventually(Duration::from_secs(60), || async {
            match publisher.publish(request).await {
                Ok(receipt) => {
                    assert_eq!(receipt, Receipt::Confirmed);
                    true
                }
                Err(e) if e.is_retryable() => false,
                Err(e) => panic!("the publisher did not recover: {e}"),
            }
        })
        .await;
        assert!(published, "the publisher did not recover within 60 s");
    }
    wait_until(
        "every request reaching the handler",
        Duration::from_secs(60),
        || {
            before
                .iter()
                .chain(&after)
                .all(|r| handler.stored(r.id).is_some())
        },
    )
    .await;
    assert_eq!(handler.stored_count(), 200, "each request stored once");
    assert_eq!(consumer.state(), LinkState::Connected);
    say(&format!(
        "broker restart: 200 of 200 requests stored; recovered in {:?}",
        started.elapsed()
    ));

    publisher.close().await;
    consumer.stop().await;
    common::delete_topology(&config).await;
}
