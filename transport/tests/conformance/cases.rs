//! The conformance cases, each generic over the [`Backend`] it runs on. Each returns false
//! when it skipped because a service it needs is unreachable.

use crate::backend::{Backend, Expected, silent_peer};
use crate::common::welcome_request;
use crate::handler::RecordingHandler;
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{PublishError, Receipt, Transport};

/// The per-publish timeout of most cases.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn publish_until_ok(
    publisher: &dyn Transport,
    request: &domain::MailRequest,
    within: Duration,
) -> Receipt {
    let outcome = std::sync::Mutex::new(None);
    testkit::eventually(within, || async {
        let result = publisher.publish(request).await;
        if let Err(e) = &result {
            assert!(e.is_retryable(), "publish failed: {e}");
        }
        let done = result.is_ok();
        *outcome.lock().unwrap() = Some(result);
        done
    })
    .await;
    match outcome.into_inner().unwrap() {
        Some(Ok(receipt)) => receipt,
        last => panic!("publish still failing after {within:?}: {last:?}"),
    }
}

pub async fn a_published_request_reaches_the_handler_unchanged<B: Backend>(test: &str) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let publisher = backend.publisher(TIMEOUT).await;
    let request = welcome_request("ada@example.com");

    let receipt = publisher.publish(&request).await.expect("publish");

    backend
        .assert_outcome(&request, receipt, Expected::Accepted)
        .await;
    assert_eq!(
        handler.stored(request.id),
        Some(request.clone()),
        "the request arrived unchanged"
    );
    publisher.close().await;
    backend.cleanup().await;
    true
}

pub async fn each_answer_comes_back_to_the_publisher<B: Backend>(test: &str) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(mut backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let publisher = backend.publisher(TIMEOUT).await;
    let fresh = welcome_request("grace@example.com");
    let refused = welcome_request("reject-me@example.com");

    let first = publisher.publish(&fresh).await.expect("publish");
    backend
        .assert_outcome(&fresh, first, Expected::Accepted)
        .await;
    let again = publisher
        .publish(&fresh)
        .await
        .expect("publish the same id again");
    assert!(
        handler.wait_for_calls(2, TIMEOUT).await,
        "the duplicate reached the handler"
    );
    backend
        .assert_outcome(&fresh, again, Expected::Duplicate)
        .await;
    let rejected = publisher
        .publish(&refused)
        .await
        .expect("publish a request to reject");
    backend
        .assert_outcome(&refused, rejected, Expected::Rejected)
        .await;

    assert!(handler.wait_for_calls(3, TIMEOUT).await);
    assert_eq!(
        handler.stored_count(),
        1,
        "only the fresh request is stored"
    );
    backend.assert_all_settled().await;
    publisher.close().await;
    backend.cleanup().await;
    true
}

pub async fn with_the_other_side_down_publish_fails_fast_with_a_retryable_error<B: Backend>(
    test: &str,
) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let short = Duration::from_millis(800);
    let silent = silent_peer().await;
    let publisher = backend.publisher_to_silent_peer(silent, short);
    // A port that was just free: nothing listens there, so connects are refused.
    let closed_port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("addr")
    };
    let refused = backend.publisher_to_silent_peer(closed_port, short);

    for publisher in [&publisher, &refused] {
        let started = Instant::now();
        let outcome = publisher.publish(&welcome_request("ada@example.com")).await;
        let took = started.elapsed();
        assert!(
            matches!(&outcome, Err(PublishError::Retryable(_))),
            "got {outcome:?}"
        );
        assert!(
            took <= short + Duration::from_millis(200),
            "publish took {took:?}"
        );
        assert_eq!(publisher.state(), transport::LinkState::Disconnected);
    }
    assert_eq!(handler.calls(), 0);
    publisher.close().await;
    refused.close().await;
    backend.cleanup().await;
    true
}

pub async fn after_the_other_side_restarts_the_same_publisher_works_again<B: Backend>(
    test: &str,
) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(mut backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let publisher = backend.publisher(TIMEOUT).await;
    let before = welcome_request("before@example.com");
    let during = welcome_request("during@example.com");
    let after = welcome_request("after@example.com");
    let receipt = publisher
        .publish(&before)
        .await
        .expect("publish before the restart");
    backend
        .assert_outcome(&before, receipt, Expected::Accepted)
        .await;

    backend.stop_receiver().await;
    let started = Instant::now();
    let outcome = publisher.publish(&during).await;
    assert!(
        started.elapsed() <= TIMEOUT + Duration::from_millis(500),
        "publish hung"
    );
    let mut outstanding = Vec::new();
    match outcome {
        Ok(receipt) => {
            assert!(
                B::QUEUES_WHILE_RECEIVER_IS_DOWN,
                "published with the receiver down: {receipt:?}"
            );
        }
        Err(e) => {
            assert!(e.is_retryable(), "{e}");
            outstanding.push(during.clone());
        }
    }
    backend.start_receiver().await;

    for request in outstanding.iter().chain([&after]) {
        let receipt = publish_until_ok(publisher.as_ref(), request, Duration::from_secs(20)).await;
        backend
            .assert_outcome(request, receipt, Expected::Accepted)
            .await;
    }
    for request in [&before, &during, &after] {
        let stored = testkit::eventually(Duration::from_secs(10), || async {
            handler.stored(request.id).is_some()
        })
        .await;
        assert!(
            stored,
            "{} was lost across the restart",
            request.to.email.as_str()
        );
    }
    publisher.close().await;
    backend.cleanup().await;
    true
}

pub async fn a_thousand_concurrent_publishes_are_all_answered_each_with_its_own_answer<
    B: Backend,
>(
    test: &str,
) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(mut backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let publisher = backend.publisher(Duration::from_secs(30)).await;
    let requests: Vec<_> = (0..1000)
        .map(|i| welcome_request(&format!("user{i}@example.com")))
        .collect();

    let receipts = join_all(requests.iter().map(|r| publisher.publish(r))).await;

    for (request, receipt) in requests.iter().zip(receipts) {
        let receipt = receipt.unwrap_or_else(|e| panic!("{} failed: {e}", request.id));
        backend
            .assert_outcome(request, receipt, Expected::Accepted)
            .await;
    }
    assert!(handler.wait_for_calls(1000, Duration::from_secs(30)).await);
    assert_eq!(handler.stored_count(), 1000);
    backend.assert_all_settled().await;
    publisher.close().await;
    backend.cleanup().await;
    true
}

pub async fn garbage_on_the_receiving_side_is_rejected_and_the_receiver_keeps_serving<
    B: Backend,
>(
    test: &str,
) -> bool {
    let handler = Arc::new(RecordingHandler::new());
    let Some(backend) = B::start(test, handler.clone()).await else {
        return false;
    };
    let publisher = backend.publisher(TIMEOUT).await;

    backend.send_garbage_and_expect_rejections().await;

    let request = welcome_request("still-served@example.com");
    let receipt = publisher
        .publish(&request)
        .await
        .expect("publish after the garbage");
    backend
        .assert_outcome(&request, receipt, Expected::Accepted)
        .await;
    assert_eq!(
        handler.stored_count(),
        1,
        "no garbage was handed to the handler"
    );
    publisher.close().await;
    backend.cleanup().await;
    true
}
