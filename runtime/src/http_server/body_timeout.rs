//! The body-read timeout: a request whose body has not fully arrived within so long of its
//! head is answered 408 `request_timeout` and its connection closed.
//!
//! The clock runs on the body's arrival, not on the handler: a request without a body (a
//! pending engine.io long-poll, a websocket upgrade) never starts it, and a body read to its
//! end stops it however long the handler then takes. A handler that drops the body unread
//! stops it too: it has chosen to answer without it.

use axum::Router;
use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::oneshot;
use tower::ServiceExt;

/// Serves `request` with `router`, or answers 408 when its body is still arriving after
/// `timeout`.
pub(super) async fn answer(
    router: Router,
    request: Request<Incoming>,
    timeout: Duration,
) -> Response {
    if request.body().is_end_stream() {
        return serve(router, request.map(Body::new)).await;
    }
    let (arrived, arrival) = oneshot::channel();
    let request = request.map(|inner| {
        Body::new(Arriving {
            inner,
            arrived: Some(arrived),
        })
    });
    let late = async {
        // `Ok`: the body arrived; `Err`: the handler dropped it. Either way no 408.
        if tokio::time::timeout(timeout, arrival).await.is_ok() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = serve(router, request) => response,
        () = late => {
            tracing::debug!(?timeout, "a request body did not arrive in time");
            request_timeout(timeout)
        }
    }
}

async fn serve(router: Router, request: Request<Body>) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The 408 in the contract's error shape, closing the connection: the rest of the body
/// would be read as the next request otherwise.
fn request_timeout(timeout: Duration) -> Response {
    let body = serde_json::json!({
        "error": "request_timeout",
        "message": format!(
            "the request body did not arrive within {} s of its headers",
            timeout.as_secs()
        ),
        "details": {},
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that says when its last byte has come in.
struct Arriving {
    inner: Incoming,
    arrived: Option<oneshot::Sender<()>>,
}

impl HttpBody for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        // The end, or an error after which nothing more can come.
        if (!matches!(frame, Some(Ok(_))) || self.inner.is_end_stream())
            && let Some(arrived) = self.arrived.take()
        {
            let _ = arrived.send(());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
