//! One try of one delivery: render, build, hand over, and decide what the outcome means —
//! sent, retried after a backoff, or failed for good.

use super::{Letterhead, MailSender, SendFailure, build_message};
use crate::metrics::Metrics;
use crate::store::{DeliveryRecord, DeliveryStatus, Finished, NewSuppression};
use crate::templates::live::LiveTemplates;
use chrono::Utc;
use runtime::telemetry::context::continue_trace;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Concurrent SMTP sends (and pooled SMTP connections).
    pub workers: usize,
    /// The first retry waits about this long; each next one twice as long.
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_cap: Duration,
    /// The longest one SMTP send may take before it counts as a timeout.
    pub send_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            // Each claim waits for a durable commit: with 16, the one runtime worker ran
            // out of work between commits and slept and woke about twice per mail; 32 keep
            // it busy and share each commit among more mails (docs/BENCHMARKS.md). Most
            // relays take 50 connections from one client.
            workers: 32,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            send_timeout: Duration::from_secs(30),
        }
    }
}

impl DeliveryOptions {
    /// The wait before try number `attempts + 1`: exponential from `retry_base`, capped at
    /// `retry_cap`, with jitter between half and all of it so a burst of failures does not
    /// retry in lockstep.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        runtime::backoff::delay_after(self.retry_base, self.retry_cap, attempts)
    }
}

/// What a try needs; shared by every worker.
pub(super) struct Attempts {
    pub(super) sender: MailSender,
    pub(super) templates: Arc<LiveTemplates>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) options: DeliveryOptions,
    pub(super) max_attempts: u32,
    pub(super) letterhead: Letterhead,
}

impl Attempts {
    /// Tries `record` once (it is claimed) and returns the outcome to record, in a span that
    /// continues the trace of the request that asked for it.
    ///
    /// The span is never entered: what happens inside names it as its parent instead (the SMTP
    /// span, log lines). An entered span costs the subscriber span lookups and an
    /// OpenTelemetry context change at every poll of the future it wraps, and an attempt is
    /// polled many times; explicit parents make the same trace at a fixed cost per attempt
    /// (docs/BENCHMARKS.md, "Traces").
    pub(super) async fn run(&self, record: &DeliveryRecord) -> Finished {
        let span = tracing::info_span!(
            "Delivering a mail",
            mail_id = %record.id,
            template = record.template.as_str(),
            attempt = i64::from(record.attempts) + 1,
        );
        continue_trace(&span, record.traceparent.as_deref());
        self.try_once(record, &span).await
    }

    async fn try_once(&self, record: &DeliveryRecord, attempt: &tracing::Span) -> Finished {
        let began = Instant::now();
        let attempts = record.attempts + 1;
        let mut reply = None;
        let outcome = match self.compose(record, attempt) {
            Ok(message) => {
                let started = Instant::now();
                // Its parent, the attempt's span, carries the mail's id.
                let span = tracing::info_span!(
                    parent: attempt,
                    "Handing a mail to the SMTP server",
                    smtp.reply_class = tracing::field::Empty,
                );
                let result = self
                    .sender
                    .send(&record.id.to_string(), message, self.options.send_timeout)
                    .await;
                let class = reply_class(&self.sender, &result);
                span.record("smtp.reply_class", class);
                tracing::debug!(parent: &span, mail_id = %record.id, smtp.reply_class = class, "mail handed over");
                // The span ends here, as the server's answer is in.
                drop(span);
                self.metrics
                    .smtp_send_duration
                    .observe(started.elapsed().as_secs_f64());
                result.map(|taken| reply = taken)
            }
            Err(e) => Err(SendFailure::Unbuildable(e)),
        };
        let now = Utc::now();
        let mut suppress = None;
        let (status, error, next) = match outcome {
            Ok(()) => (DeliveryStatus::Sent, None, now),
            Err(SendFailure::Unbuildable(e)) => {
                self.metrics.count_smtp_error("message");
                (DeliveryStatus::Failed, Some(e), now)
            }
            Err(SendFailure::Permanent(e)) => {
                self.metrics.count_smtp_error("permanent");
                (DeliveryStatus::Failed, Some(e), now)
            }
            Err(SendFailure::RecipientRefused(e)) => {
                self.metrics.count_smtp_error("recipient");
                // The server's reply is the reason, as the suppression list shows it.
                suppress = Some(NewSuppression::new(&record.to.email, e.clone(), now));
                (DeliveryStatus::Failed, Some(e), now)
            }
            Err(SendFailure::Transient { error, class })
            | Err(SendFailure::Uncertain { error, class })
                if attempts >= self.max_attempts =>
            {
                self.metrics.count_smtp_error(class);
                (
                    DeliveryStatus::Failed,
                    Some(format!("gave up after {attempts} attempts: {error}")),
                    now,
                )
            }
            Err(SendFailure::Uncertain { error, class }) => {
                self.metrics.smtp_possible_resends.inc();
                self.metrics.count_smtp_error(class);
                (
                    DeliveryStatus::Retrying,
                    Some(error),
                    self.next_try(now, attempts),
                )
            }
            Err(SendFailure::Transient { error, class }) => {
                self.metrics.count_smtp_error(class);
                (
                    DeliveryStatus::Retrying,
                    Some(error),
                    self.next_try(now, attempts),
                )
            }
        };
        let (smtp_code, smtp_reply) = match (&reply, &error) {
            (Some(reply), _) => (
                Some(u16::from(reply.code())),
                reply.first_line().unwrap_or(""),
            ),
            (None, Some(error)) => match failure_code(error) {
                // The server's own words, after lettre's `… error (550): `.
                Some(code) => (
                    Some(code),
                    error
                        .split_once("): ")
                        .map_or(error.as_str(), |(_, text)| text),
                ),
                None => (None, error.as_str()),
            },
            (None, None) => (None, ""),
        };
        delivery_line(
            attempt,
            &DeliveryLine {
                id: record.id,
                template: record.template.as_str(),
                to: record.to.email.canonical(),
                status: status.as_public(),
                attempt: attempts,
                smtp_code,
                smtp_reply,
                duration: began.elapsed(),
            },
        );
        Finished {
            id: record.id,
            status,
            attempts,
            error,
            at: now,
            next_attempt_at: next,
            suppress,
        }
    }

    fn next_try(&self, now: chrono::DateTime<Utc>, attempts: u32) -> chrono::DateTime<Utc> {
        let wait = self.options.retry_delay(attempts);
        now + chrono::Duration::from_std(wait).unwrap_or_default()
    }

    /// Renders and builds the message of `record`. A render or build error, and a panic on
    /// the way (caught here, so the worker lives on to record it), is the reason the delivery
    /// fails: the same record would fail the same way at every try.
    fn compose(
        &self,
        record: &DeliveryRecord,
        attempt: &tracing::Span,
    ) -> Result<lettre::Message, String> {
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mail = self
                .templates
                .current()
                .render(&record.template, &record.locale, &record.to, &record.vars)
                .map_err(|e| e.to_string())?;
            build_message(
                &self.letterhead,
                record.id,
                &record.template,
                &record.to,
                mail,
            )
        }));
        built.unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(parent: attempt, mail_id = %record.id, panic = %why, "building a mail panicked");
            Err(format!(
                "the message could not be built: it panicked ({why})"
            ))
        })
    }
}

/// The class of the server's last reply, as the SMTP span shows it: `2xx` taken, `4xx` refused
/// for now, `5xx` refused for good, `none` when no reply came (no connection, a timeout, a
/// dropped connection, or a mail written to a file).
fn reply_class(
    sender: &MailSender,
    result: &Result<Option<lettre::transport::smtp::response::Response>, SendFailure>,
) -> &'static str {
    if let MailSender::Files(_) = sender {
        return "none";
    }
    match result {
        Ok(_) => "2xx",
        Err(SendFailure::Permanent(_) | SendFailure::RecipientRefused(_)) => "5xx",
        Err(SendFailure::Transient {
            class: "transient", ..
        }) => "4xx",
        Err(_) => "none",
    }
}

/// What the one log line of a delivery outcome says.
pub(crate) struct DeliveryLine<'a> {
    pub(crate) id: domain::MailRequestId,
    pub(crate) template: &'a str,
    /// The whole canonical address: only its domain is written.
    pub(crate) to: &'a str,
    pub(crate) status: &'static str,
    pub(crate) attempt: u32,
    pub(crate) smtp_code: Option<u16>,
    pub(crate) smtp_reply: &'a str,
    pub(crate) duration: Duration,
}

/// Writes the INFO line of one delivery outcome (sent, retrying, failed, suppressed,
/// cancelled), the line a mail operator greps for, as Postfix's `status=sent`. Its parent is
/// the span of the work that decided it, so that JSON logs name the request's `trace_id`.
/// Nothing is built for it but the line itself.
pub(crate) fn delivery_line(parent: &tracing::Span, line: &DeliveryLine<'_>) {
    let domain = line.to.rsplit_once('@').map_or("", |(_, domain)| domain);
    tracing::info!(
        parent: parent,
        mail_id = %line.id,
        // Shown bare in the text format (`status=sent`, as mail operators grep Postfix's
        // lines); the reply, which holds spaces, stays quoted.
        template = %line.template,
        recipient_domain = %domain,
        status = %line.status,
        attempt = line.attempt,
        smtp_code = line.smtp_code,
        smtp_reply = line.smtp_reply,
        duration_ms = (line.duration.as_secs_f64() * 1e6).round() / 1e3,
        "delivery"
    );
}

/// The SMTP reply code in a failure's text, as lettre writes it (`permanent error (550): …`).
fn failure_code(error: &str) -> Option<u16> {
    let at = error.find("error (")? + "error (".len();
    let code = error.get(at..at + 4)?;
    code.strip_suffix(')')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::failure_code;

    #[test]
    fn the_reply_code_is_read_from_lettres_error_text() {
        assert_eq!(
            failure_code("SMTP: permanent error (550): no such user"),
            Some(550)
        );
        assert_eq!(
            failure_code("gave up after 8 attempts: SMTP: transient error (451): later"),
            Some(451)
        );
        assert_eq!(
            failure_code("the SMTP server did not answer within 30 ms"),
            None
        );
    }
}
