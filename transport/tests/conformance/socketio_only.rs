//! socket.io cases with no AMQP counterpart: the token check at connect, the ack timeout
//! the publisher sets itself, and pending acks failing at once when the connection drops.

use crate::backend::Backend;
use crate::common::welcome_request;
use crate::handler::RecordingHandler;
use crate::raw_socket::RawSocket;
use crate::socketio::{SocketIoBackend, TOKEN};
use domain::Secret;
use domain::config::SocketIoConfig;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::socketio::SocketIoPublisher;
use transport::{LinkState, PublishError, Transport};

#[tokio::test]
async fn socketio_a_wrong_or_missing_token_gets_a_connect_error() {
    let handler = Arc::new(RecordingHandler::new());
    let backend = SocketIoBackend::start("token", handler.clone())
        .await
        .expect("start");

    for auth in [json!({"token": "wrong"}), json!({}), json!(null)] {
        let refused = RawSocket::connect(backend.addr(), auth.clone()).await.err();
        let packet = refused.unwrap_or_else(|| panic!("{auth} was accepted"));
        assert!(
            packet.starts_with("44") && packet.contains("unauthorized"),
            "{packet}"
        );
    }
    let publisher = SocketIoPublisher::start(&SocketIoConfig {
        url: format!("http://{}", backend.addr()),
        token: Secret::new("wrong"),
    });
    assert!(
        !publisher
            .wait_until_connected(Duration::from_millis(1500))
            .await
    );
    assert_eq!(publisher.state(), LinkState::Disconnected);
    let outcome = publisher.publish(&welcome_request("ada@example.com")).await;
    assert!(
        matches!(outcome, Err(PublishError::Retryable(_))),
        "{outcome:?}"
    );
    assert_eq!(handler.calls(), 0);
    backend.cleanup().await;
}

#[tokio::test]
async fn socketio_a_publish_that_gets_no_ack_times_out_with_a_retryable_error() {
    let handler = Arc::new(RecordingHandler::new());
    let backend = SocketIoBackend::start("stall", handler)
        .await
        .expect("start");
    let timeout = Duration::from_millis(500);
    let publisher = backend.publisher(timeout).await;

    let started = Instant::now();
    let outcome = publisher
        .publish(&welcome_request("stall-forever@example.com"))
        .await;
    let took = started.elapsed();

    assert!(
        matches!(&outcome, Err(PublishError::Retryable(m)) if m.contains("did not answer")),
        "{outcome:?}"
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(300),
        "took {took:?}"
    );
    let next = publisher.publish(&welcome_request("ada@example.com")).await;
    assert!(
        next.is_ok(),
        "the link still serves after a timeout: {next:?}"
    );
    backend.cleanup().await;
}

#[tokio::test]
async fn socketio_pending_acks_fail_at_once_when_the_connection_drops() {
    let handler = Arc::new(RecordingHandler::new());
    let mut backend = SocketIoBackend::start("drop", handler.clone())
        .await
        .expect("start");
    let publisher = backend.publisher(Duration::from_secs(10)).await;
    let waiting = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            publisher
                .publish(&welcome_request("stall-1@example.com"))
                .await
        })
    };
    let waiting_on_the_mailer = testkit::eventually(Duration::from_secs(5), || {
        std::future::ready(handler.stalled() >= 1)
    })
    .await;
    assert!(waiting_on_the_mailer, "the request reaches the mailer");

    let started = Instant::now();
    backend.stop_receiver().await;
    let outcome = waiting.await.expect("join");

    assert!(
        matches!(&outcome, Err(PublishError::Retryable(m)) if m.contains("dropped")),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(publisher.state(), LinkState::Disconnected);
    let _ = TOKEN;
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_a_mailer_restart_mid_stream_loses_no_request() {
    let handler = Arc::new(RecordingHandler::new());
    let mut backend = SocketIoBackend::start("restart", handler.clone())
        .await
        .expect("start");
    let publisher = backend.publisher(Duration::from_secs(2)).await;
    let requests: Vec<_> = (0..300)
        .map(|i| welcome_request(&format!("r{i}@example.com")))
        .collect();
    // A relay-like sender: publishes in order and retries each request until it is answered.
    let sender = {
        let publisher = publisher.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let retries = std::sync::atomic::AtomicUsize::new(0);
            for request in &requests {
                let answered = testkit::eventually(Duration::from_secs(30), || async {
                    match publisher.publish(request).await {
                        Ok(_) => true,
                        Err(e) => {
                            assert!(e.is_retryable(), "{e}");
                            retries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            false
                        }
                    }
                })
                .await;
                assert!(answered, "{} was not answered within 30 s", request.id);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            retries.into_inner()
        })
    };

    // Requests are flowing when the mailer stops.
    let flowing = testkit::eventually(Duration::from_secs(10), || {
        std::future::ready(handler.stored_count() >= 20)
    })
    .await;
    assert!(flowing, "requests flow before the restart");
    backend.stop_receiver().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.start_receiver().await;
    let retries = sender.await.expect("the sender finished");

    assert!(
        retries > 0,
        "the restart happened while requests were flowing"
    );
    for request in &requests {
        assert!(
            handler.stored(request.id).is_some(),
            "{} was lost",
            request.id
        );
    }
    assert_eq!(handler.stored_count(), requests.len());
    testkit::report(&format!(
        "socket.io mailer restart: {} of {} requests stored, {retries} retried publishes",
        handler.stored_count(),
        requests.len()
    ));
    backend.cleanup().await;
}
