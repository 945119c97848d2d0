//! Logs and traces of every Facteur process.
//!
//! [`init`] installs one subscriber with two layers: the log lines (text, or JSON with
//! `log.format: json`, filtered by `log.level` or `RUST_LOG`) and the spans of Facteur's own
//! crates. Spans are made whether or not they are exported, because the trace context they
//! carry travels with each mail request (W3C Trace Context, [`context`]) and JSON log lines
//! name it (`trace_id`, `span_id`). With `telemetry.otlp_endpoint` set, they are OpenTelemetry
//! spans and a batch processor exports them over OTLP/HTTP ([`export`]); what it cannot
//! export is counted (`telemetry_spans_dropped_total`), never waited for. With it null, a
//! span keeps its context only ([`ids`]): nothing else of it would ever be read.
//!
//! The span filter is separate from the log filter, so `log.level: warn` does not cut a trace.

pub mod context;
mod export;
mod ids;
mod json_log;
mod lines;

pub use export::register_metrics;

use domain::config::{LogConfig, LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The crates whose spans are traced; other crates' spans (the database driver's, say)
/// would cost on the hot path and say little.
const TRACED_CRATES: [&str; 4] = ["users", "mailer", "transport", "facteur"];

/// The installed tracer provider; [`Telemetry::shutdown`] exports what is still queued.
#[must_use = "dropping the handle does not flush; call shutdown before the process ends"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued (for up to a few seconds) and stops the exporter, then
    /// writes the log lines still gathered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "the last spans could not be exported");
        }
        flush_lines();
    }
}

/// The one writer of log lines of the process, whichever service installed it.
static LINES: OnceLock<lines::Lines> = OnceLock::new();

fn log_lines() -> lines::Lines {
    LINES.get_or_init(lines::Lines::to_stderr).clone()
}

/// Writes the log lines still gathered (`info` and below wait up to a few milliseconds to be
/// written together). A process calls it before it exits.
pub fn flush_lines() {
    if let Some(lines) = LINES.get() {
        lines.flush();
    }
}

/// Installs the global subscriber and tracer provider. `process` is the default
/// `service.name`. Calling it again (tests, the launcher) changes nothing and returns a
/// handle with nothing to flush. Export setup errors are logged and leave export off: traces
/// never stop a process.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig, process: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let service = telemetry.service_name.as_deref().unwrap_or(process);
    let (provider, export_error) = match export::provider(telemetry, service) {
        Ok(provider) => (provider, None),
        Err(error) => (None, Some(error)),
    };
    let spans = match &provider {
        Some(provider) => tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("facteur"))
            // Source locations, threads and busy/idle times are read by no one here; leaving
            // them out keeps a span to its name, its fields and its start and end.
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            .with_filter(span_filter())
            .boxed(),
        // Nothing is exported: spans get their context and nothing else.
        None => ids::IdsLayer::default().with_filter(span_filter()).boxed(),
    };
    let lines = match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            // Colours only on a terminal: in a file, escape codes would split `status=sent`
            // and every other `field=value` an operator greps for.
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(log_lines())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .map_event_format(json_log::WithTraceIds)
            .with_writer(log_lines())
            .with_filter(filter)
            .boxed(),
    };
    let installed = Registry::default()
        .with(lines)
        .with(spans)
        .try_init()
        .is_ok();
    if !installed {
        // Another subscriber is already set (tests, or the launcher's second service).
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Telemetry { provider: None };
    }
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    if let Some(error) = export_error {
        tracing::warn!(%error, "spans will not be exported");
    } else if let Some(url) = telemetry.traces_url() {
        let endpoint = domain::config::redact_user_info(&url);
        tracing::info!(%endpoint, service, "exporting spans over OTLP/HTTP");
    }
    Telemetry { provider }
}

/// Which spans are traced: Facteur's own, at `info` or above.
fn span_filter() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span() && *meta.level() <= tracing::Level::INFO && is_traced(meta.target())
    })
    // Lets `debug!` and `trace!` callsites stay off at no cost when logs are at `info`.
    .with_max_level_hint(tracing::Level::INFO)
}

/// Whether spans of `target` (a module path) are traced.
fn is_traced(target: &str) -> bool {
    TRACED_CRATES.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}
