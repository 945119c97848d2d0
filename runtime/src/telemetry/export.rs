//! Span export: a batch processor over the OTLP/HTTP (protobuf) exporter, with a bounded
//! queue whose overflow and failed exports are counted.
//!
//! The SDK's batch processor runs on a thread of its own and drives the exporter with a
//! blocking executor, so the exporter's HTTP client must not need the caller's runtime:
//! [`ExportClient`] runs each POST on a one-thread Tokio runtime kept for export alone, which
//! also keeps export off the workers that serve requests. A span reaches the processor only
//! through [`CountedProcessor`], which refuses it (and counts it) when the queue holds
//! `QUEUE` spans already, so a span's end never waits and the SDK's own queue never fills.

use domain::config::TelemetryConfig;
use opentelemetry::Context;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
    SpanProcessor,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Spans waiting for export at most; more are dropped and counted.
const QUEUE: usize = 4096;
/// Spans per export request.
const BATCH: usize = 512;
/// How long a span may wait for a fuller batch.
const DELAY: Duration = Duration::from_secs(1);
/// The longest one export request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Labels of `telemetry_spans_dropped_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    /// `queue_full` (refused at the span's end) or `export_failed` (the endpoint did not take
    /// the batch).
    reason: &'static str,
}

/// One family for the whole process: the tracer provider is global, and so are its losses.
static DROPPED: LazyLock<Family<DropLabels, Counter>> = LazyLock::new(Family::default);

fn count_dropped(reason: &'static str, spans: usize) {
    DROPPED
        .get_or_create(&DropLabels { reason })
        .inc_by(spans as u64);
}

/// Adds `telemetry_spans_dropped_total{reason}` to a service's `/metrics`.
pub fn register_metrics(registry: &mut Registry) {
    // Both reasons show from the start, at 0, so a dashboard needs no absent-series rule.
    count_dropped("queue_full", 0);
    count_dropped("export_failed", 0);
    registry.register(
        "telemetry_spans_dropped",
        "Spans not exported: refused by the full export queue, or lost with a failed export",
        DROPPED.clone(),
    );
}

/// The tracer provider that exports to `telemetry.otlp_endpoint` through the counted batch
/// processor; none when the endpoint is null (spans then get ids only, for propagation and
/// logs: [`super::ids`]). An exporter that cannot be built is the error.
pub(super) fn provider(
    config: &TelemetryConfig,
    service: &str,
) -> Result<Option<SdkTracerProvider>, String> {
    let Some(url) = config.traces_url() else {
        return Ok(None);
    };
    let resource = Resource::builder_empty()
        .with_service_name(service.to_string())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(processor(&url)?)
            .build(),
    ))
}

fn processor(url: &str) -> Result<CountedProcessor, String> {
    let client = ExportClient::start().map_err(|e| format!("no export thread: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let queued = Arc::new(AtomicUsize::new(0));
    let batch = BatchSpanProcessor::builder(CountedExporter {
        inner: exporter,
        queued: queued.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(BATCH)
            .with_scheduled_delay(DELAY)
            .build(),
    )
    .build();
    Ok(CountedProcessor {
        inner: batch,
        queued,
    })
}

/// The batch processor behind a count of the spans it holds.
#[derive(Debug)]
struct CountedProcessor {
    inner: BatchSpanProcessor,
    /// Spans handed to `inner` and not yet given to the exporter.
    queued: Arc<AtomicUsize>,
}

impl SpanProcessor for CountedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        // The count only grows here and shrinks when the exporter takes a batch, so the
        // processor's own queue (as long) never holds more than this.
        if self.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            count_dropped("queue_full", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what leaves the queue and what an export loses.
#[derive(Debug)]
struct CountedExporter<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for CountedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        self.queued.fetch_sub(spans, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        if result.is_err() {
            count_dropped("export_failed", spans);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An async HTTP client (reqwest) on a runtime of its own, callable from any thread.
#[derive(Debug, Clone)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    /// Starts the export runtime's thread; it lives as long as the process.
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("span-export".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            client,
            runtime: handle,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let call = async move {
            let answer = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                // The endpoint may carry a user and password; no error text shows them.
                .map_err(reqwest::Error::without_url)?;
            let status = answer.status().as_u16();
            let body = answer.bytes().await.map_err(reqwest::Error::without_url)?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = self.runtime.spawn(call).await??;
        Ok(Response::builder().status(status).body(body)?)
    }
}
