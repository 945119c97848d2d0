//! Carrying a trace from one process to the next (W3C Trace Context).
//!
//! A trace context travels as a `traceparent` string: in the mail request itself (its
//! optional `traceparent` field, so it crosses every transport and is stored with the
//! request), in HTTP headers, and on AMQP also as a message header ([`HeaderInjector`],
//! [`HeaderExtractor`] over lapin's `FieldTable`). The spans are tracing spans; these
//! functions read and set the context behind them: the OpenTelemetry layer's when spans are
//! exported, the [`super::ids`] layer's when they are not.

use super::ids::with_span_ids;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (HTTP and AMQP) and mail request field of the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Makes `span` continue the trace `traceparent` names. Must be called before the span is
/// first entered and before any child of it is made (a child takes its trace when it is
/// made). A missing or malformed value leaves the span the root of a new trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let parent = TraceContextPropagator::new().extract(&OnlyTraceparent(value));
    let remote = parent.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    let unexported = with_span_ids(span, |ids| {
        ids.trace_id = remote.trace_id();
        ids.flags = remote.trace_flags();
    });
    if unexported.is_none() {
        // Fails only when no tracing layer is installed or the span was entered: either way
        // the span stays in a trace of its own, which is all a trace context may cost.
        let _ = span.set_parent(parent);
    }
}

/// A carrier of one `traceparent` value, read without copying it (this runs once per mail
/// and attempt).
struct OnlyTraceparent<'a>(&'a str);

impl Extractor for OnlyTraceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// Gives `span`, the span of an incoming HTTP request, its trace. From a peer of
/// `telemetry.trusted_trace_peers` (`trusted`), the `traceparent` header's trace is continued.
/// From any other peer it chooses nothing: the span stays the root of a trace of its own,
/// sampled as every trace started here is, and links to the caller's context so that the two
/// traces can still be joined. A link is recorded with the span when spans are exported; with
/// export off, nothing of a span is recorded, and only the fresh trace id remains.
/// Must be called, like [`continue_trace`], before the span is entered.
pub fn start_request_trace(span: &tracing::Span, headers: &http::HeaderMap, trusted: bool) {
    let value = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok());
    if trusted {
        continue_trace(span, value);
        return;
    }
    let Some(value) = value else { return };
    let caller = TraceContextPropagator::new().extract(&OnlyTraceparent(value));
    let remote = caller.span().span_context().clone();
    if remote.is_valid() && with_span_ids(span, |_| ()).is_none() {
        span.add_link(remote);
    }
}

/// The `traceparent` of `span`, to hand to the next process; none when spans are not traced
/// (no subscriber installed, or the span is disabled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if let Some(own) = with_span_ids(span, |ids| {
        traceparent_of(ids.trace_id, ids.span_id, ids.flags)
    }) {
        return Some(own);
    }
    let cx = span.context();
    let span_ref = cx.span();
    let context = span_ref.span_context();
    context
        .is_valid()
        .then(|| traceparent_of(context.trace_id(), context.span_id(), context.trace_flags()))
}

/// A `traceparent` value (version 00).
fn traceparent_of(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    format!("00-{trace_id}-{span_id}-{:02x}", flags.to_u8())
}

/// Writes trace context fields into AMQP message headers.
pub struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            ShortString::from(key.to_string()),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
}

/// Reads trace context fields from AMQP message headers. Only string values count; a
/// header of another type is treated as absent.
pub struct HeaderExtractor<'a>(pub &'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

/// The `traceparent` among AMQP message headers, if it is a string.
pub fn traceparent_of_amqp_headers(headers: &FieldTable) -> Option<String> {
    HeaderExtractor(headers)
        .get(TRACEPARENT)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_goes_through_amqp_headers_and_back() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = TraceContextPropagator::new().extract(&OnlyTraceparent(value));
        let mut headers = FieldTable::default();
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
        assert_eq!(
            traceparent_of_amqp_headers(&headers).as_deref(),
            Some(value)
        );
        let back = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert_eq!(
            back.span().span_context().trace_id(),
            cx.span().span_context().trace_id()
        );
        headers.insert("traceparent".into(), AMQPValue::LongLongInt(7));
        assert_eq!(traceparent_of_amqp_headers(&headers), None);
    }
}
