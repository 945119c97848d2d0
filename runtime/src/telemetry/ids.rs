//! Spans when nothing is exported: each traced span gets a W3C span context (trace id, span
//! id, sampled flag) and nothing else.
//!
//! With export off, an OpenTelemetry span's name, attributes and times would be gathered only
//! to be dropped at its end; what a span is still for is its context: handed to the next
//! process (`traceparent`), inherited by its children, and named by JSON log lines. This
//! layer keeps just that in the span's extensions, which is what OpenTelemetry calls a
//! non-recording span, and it follows the SDK's default sampler (parent-based, always on):
//! a child inherits its parent's trace and flag, a root starts a sampled trace. The flag is
//! kept rather than cleared so that a service downstream that does export still sees the
//! caller's decision.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::span::{Attributes, Id};
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The context of one span that is not exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SpanIds {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) flags: TraceFlags,
}

/// Gives every span it sees a [`SpanIds`]; installed instead of the OpenTelemetry layer when
/// spans are not exported.
#[derive(Debug, Default)]
pub(super) struct IdsLayer {
    ids: RandomIdGenerator,
}

impl<S> Layer<S> for IdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // `parent` is the explicit parent, else the current span, among the spans this
        // layer's filter lets through.
        let inherited = span
            .parent()
            .and_then(|parent| parent.extensions().get::<SpanIds>().copied());
        let ids = match inherited {
            Some(parent) => SpanIds {
                span_id: self.ids.new_span_id(),
                ..parent
            },
            None => SpanIds {
                trace_id: self.ids.new_trace_id(),
                span_id: self.ids.new_span_id(),
                flags: TraceFlags::SAMPLED,
            },
        };
        span.extensions_mut().insert(ids);
    }
}

/// Runs `f` on the ids of `span`, if this layer gave it some; `None` otherwise (export is on,
/// no subscriber is installed, or the span is disabled).
pub(super) fn with_span_ids<R>(
    span: &tracing::Span,
    f: impl FnOnce(&mut SpanIds) -> R,
) -> Option<R> {
    span.with_subscriber(|(id, dispatch): (&Id, &Dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let mut extensions = data.extensions_mut();
        extensions.get_mut::<SpanIds>().map(f)
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::super::context::{continue_trace, start_request_trace, traceparent};
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn with_ids_layer(f: impl FnOnce()) {
        let subscriber = Registry::default().with(IdsLayer::default());
        tracing::subscriber::with_default(subscriber, f);
    }

    fn parts(traceparent: &str) -> Vec<String> {
        traceparent.split('-').map(str::to_string).collect()
    }

    #[test]
    fn a_root_span_starts_a_sampled_trace_and_a_child_stays_in_it() {
        with_ids_layer(|| {
            let root = tracing::info_span!("root");
            let child = tracing::info_span!(parent: &root, "child");
            let (root, child) = (
                parts(&traceparent(&root).expect("root ids")),
                parts(&traceparent(&child).expect("child ids")),
            );
            assert_eq!(root[0], "00");
            assert_eq!(root[3], "01", "a trace started here is sampled");
            assert_eq!(child[1], root[1], "one trace");
            assert_ne!(child[2], root[2], "a span id of its own");
            assert_eq!(child[3], "01");
            // A span entered is the parent of the spans made inside it.
            let outer = tracing::info_span!("outer");
            let inner = outer.in_scope(|| tracing::info_span!("inner"));
            assert_eq!(
                parts(&traceparent(&inner).unwrap())[1],
                parts(&traceparent(&outer).unwrap())[1]
            );
        });
    }

    #[test]
    fn a_continued_trace_keeps_the_callers_id_and_sampling_decision() {
        with_ids_layer(|| {
            for flags in ["01", "00"] {
                let caller =
                    format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
                let span = tracing::info_span!("accepting");
                continue_trace(&span, Some(&caller));
                let child = tracing::info_span!(parent: &span, "attempt");
                for own in [traceparent(&span).unwrap(), traceparent(&child).unwrap()] {
                    let own = parts(&own);
                    assert_eq!(own[1], "4bf92f3577b34da6a3ce929d0e0e4736");
                    assert_ne!(
                        own[2], "00f067aa0ba902b7",
                        "the caller's span is the parent"
                    );
                    assert_eq!(own[3], flags, "the caller's sampling decision is kept");
                }
            }
        });
    }

    #[test]
    fn a_request_from_an_untrusted_peer_starts_a_sampled_trace_of_its_own() {
        with_ids_layer(|| {
            let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", caller.parse().unwrap());
            let untrusted = tracing::info_span!("request");
            start_request_trace(&untrusted, &headers, false);
            let own = parts(&traceparent(&untrusted).unwrap());
            assert_ne!(own[1], "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(own[3], "01", "sampled whatever the caller's flag says");
            let trusted = tracing::info_span!("request");
            start_request_trace(&trusted, &headers, true);
            let own = parts(&traceparent(&trusted).unwrap());
            assert_eq!(own[1], "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(own[3], "00");
        });
    }

    #[test]
    fn a_malformed_traceparent_leaves_the_span_in_a_trace_of_its_own() {
        with_ids_layer(|| {
            let span = tracing::info_span!("accepting");
            let before = traceparent(&span).unwrap();
            continue_trace(&span, Some("00-not-a-trace-01"));
            continue_trace(
                &span,
                Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            );
            assert_eq!(traceparent(&span).unwrap(), before);
        });
    }

    #[test]
    fn without_the_layer_there_are_no_ids() {
        let subscriber = Registry::default();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("untraced");
            assert_eq!(traceparent(&span), None);
        });
    }
}
