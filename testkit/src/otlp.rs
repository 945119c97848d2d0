//! An OTLP/HTTP trace receiver: it decodes each `ExportTraceServiceRequest` with the
//! protocol's own definitions (opentelemetry-proto) and keeps every span as a JSON value:
//! `{"service", "trace_id", "span_id", "parent_span_id", "name", "kind", "attributes", "links",
//! "start_ns", "end_ns"}`, ids in lower-case hex (the parent is "" for a root span), each link
//! `{"trace_id", "span_id"}`. Anything but a protobuf POST to `/v1/traces` that decodes gets
//! 400 or 404, so a malformed export shows in the sender's counters, not as silence.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Spans = Arc<Mutex<Vec<Value>>>;

/// The running receiver; it stops when dropped.
pub struct OtlpReceiver {
    port: u16,
    spans: Spans,
    _stop: oneshot::Sender<()>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free loopback port, on a thread and runtime of its own so that
    /// it answers whatever the test's own runtime is doing.
    pub fn start() -> OtlpReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("an address").port();
        let spans = Spans::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        OtlpReceiver {
            port,
            spans,
            _stop: stop,
        }
    }

    /// The base URL an exporter sends to (it appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Value> {
        self.spans.lock().expect("spans lock").clone()
    }

    /// The spans of `trace_id` received so far.
    pub fn trace(&self, trace_id: &str) -> Vec<Value> {
        self.spans()
            .into_iter()
            .filter(|s| s["trace_id"] == trace_id)
            .collect()
    }
}

async fn receive(
    axum::extract::State(spans): axum::extract::State<Spans>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/x-protobuf");
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) if protobuf => request,
        _ => return answer(StatusCode::BAD_REQUEST, Vec::new()),
    };
    spans.lock().expect("spans lock").extend(spans_of(&request));
    let response = ExportTraceServiceResponse::default().encode_to_vec();
    answer(StatusCode::OK, response)
}

fn answer(
    status: StatusCode,
    body: Vec<u8>,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
}

/// Every span of one export, flattened with its service's name.
fn spans_of(request: &ExportTraceServiceRequest) -> Vec<Value> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or(json!(""));
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let links: Vec<Value> = span
                    .links
                    .iter()
                    .map(|l| json!({"trace_id": hex(&l.trace_id), "span_id": hex(&l.span_id)}))
                    .collect();
                out.push(json!({
                    "service": service,
                    "trace_id": hex(&span.trace_id),
                    "span_id": hex(&span.span_id),
                    "parent_span_id": hex(&span.parent_span_id),
                    "name": span.name,
                    "kind": span.kind,
                    "attributes": attributes(&span.attributes),
                    "links": links,
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                }));
            }
        }
    }
    out
}

fn attributes(pairs: &[KeyValue]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, value)))
        .collect()
}

fn value(any: &AnyValue) -> Value {
    match &any.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::BytesValue(b)) => json!(hex(b)),
        Some(any_value::Value::ArrayValue(a)) => a.values.iter().map(value).collect(),
        Some(any_value::Value::KvlistValue(l)) => Value::Object(attributes(&l.values)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
