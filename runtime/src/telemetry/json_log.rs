//! JSON log lines that name the trace they belong to.

use super::ids::SpanIds;
use opentelemetry::trace::TraceContextExt;
use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps the JSON event format: a line written inside a traced span starts with its
/// `trace_id` and `span_id`, the innermost traced span's. Lines outside any are unchanged.
pub(super) struct WithTraceIds<F>(pub(super) F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = ctx.event_scope().and_then(|scope| {
            let mut exported = Vec::new();
            for span in scope {
                // Spans that are not exported carry their ids themselves.
                if let Some(ids) = span.extensions().get::<SpanIds>() {
                    return Some((ids.trace_id, ids.span_id));
                }
                exported.push(span.id());
            }
            tracing::dispatcher::get_default(|dispatch| {
                exported.iter().find_map(|id| {
                    let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
                    let span = cx.span();
                    let context = span.span_context();
                    context
                        .is_valid()
                        .then(|| (context.trace_id(), context.span_id()))
                })
            })
        });
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
}
