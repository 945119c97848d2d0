//! What a report sent back changes. For each delivery a message was addressed to (by VERP),
//! the report's part about that delivery's recipient decides:
//!
//! - a delivery status of class 5: the delivery, if `sent`, becomes `bounced` with the status
//!   and diagnostic, and its address goes on the suppression list, in one transaction;
//! - class 4: the report is recorded in the delivery's history, nothing else changes;
//! - an abuse complaint: `complained`, and the address suppressed;
//! - anything else (class 2, another feedback type, a message that is no report, a delivery
//!   that is not held): counted as ignored.
//!
//! Each change is announced like every status change (`mail-status`, `mail-activity`, AMQP,
//! `/live`); its webhook events are written by the store with the change.

use super::listener::Inbound;
use super::report::{Complaint, RecipientStatus, Report};
use crate::events::{Change, Events};
use crate::metrics::Metrics;
use crate::sending::{DeliveryLine, delivery_line};
use crate::store::{DeliveryRecord, NewReport, NewSuppression, ReportKind, Store};
use chrono::Utc;
use domain::Email;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Applies the reports the receiver hands over.
pub struct Intake {
    pub store: Store,
    pub events: Events,
    pub metrics: Arc<Metrics>,
}

impl Intake {
    /// Applies each message of `inbound` until the receiver stops.
    pub async fn run(self, mut inbound: mpsc::Receiver<Inbound>) {
        while let Some(message) = inbound.recv().await {
            self.apply(message).await;
        }
    }

    async fn apply(&self, message: Inbound) {
        for id in &message.ids {
            let record = match self.store.get(*id).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    self.metrics.count_report("ignored");
                    continue;
                }
                Err(e) => {
                    // The receiver has answered 250 already: the report is lost. Logged, as
                    // a store that does not answer is logged everywhere.
                    tracing::warn!(mail_id = %id, error = %e, "a report could not be applied");
                    continue;
                }
            };
            match judge(&message.report, &record) {
                Some(report) => self.record(&record, report).await,
                None => self.metrics.count_report("ignored"),
            }
        }
        if message.ids.is_empty() {
            self.metrics.count_report("ignored");
        }
    }

    async fn record(&self, record: &DeliveryRecord, report: NewReport) {
        let kind = report.kind;
        let reason = report.reason.clone();
        let diagnostic = report.diagnostic.clone().unwrap_or_default();
        let status = kind.new_status();
        let mut tries = 0;
        let cursor = loop {
            match self.store.report(report.clone()).await {
                Ok(cursor) => break cursor,
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(mail_id = %record.id, error = %e, "a report could not be recorded; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    tracing::error!(mail_id = %record.id, error = %e, "a report could not be recorded");
                    return;
                }
            }
        };
        self.metrics.count_report(kind.as_str());
        let (Some(status), Some(cursor)) = (status, cursor) else {
            return;
        };
        self.metrics
            .count_delivery(status.as_public(), &record.template);
        self.metrics.count_suppression(kind.as_str());
        delivery_line(
            &tracing::Span::current(),
            &DeliveryLine {
                id: record.id,
                template: record.template.as_str(),
                to: record.to.email.canonical(),
                status: status.as_public(),
                attempt: record.attempts,
                smtp_code: None,
                smtp_reply: &diagnostic,
                duration: Duration::ZERO,
            },
        );
        self.events
            .status_changed(Change {
                id: record.id,
                template: record.template.clone(),
                to: &record.to,
                status,
                attempts: record.attempts,
                error: Some(reason),
                cursor,
                sender: record.sender.as_deref(),
            })
            .await;
    }
}

/// What `report` says of `record`, if anything.
fn judge(report: &Report, record: &DeliveryRecord) -> Option<NewReport> {
    let at = Utc::now();
    let email = &record.to.email;
    match report {
        Report::Delivery(statuses) => {
            let part = about(statuses, email)?;
            let (kind, reason) = match part.status.as_bytes().first() {
                Some(b'5') => (
                    ReportKind::Bounce,
                    format!(
                        "bounced: {}{}",
                        part.status,
                        part.diagnostic
                            .as_deref()
                            .map(|d| format!(" {d}"))
                            .unwrap_or_default()
                    ),
                ),
                Some(b'4') => (ReportKind::Delay, String::new()),
                _ => return None,
            };
            let suppress = (kind == ReportKind::Bounce)
                .then(|| NewSuppression::new(email, reason.clone(), at));
            Some(NewReport {
                mail_id: record.id,
                kind,
                status: part.status.clone(),
                diagnostic: part.diagnostic.clone(),
                at,
                reason,
                suppress,
            })
        }
        Report::Complaint(complaint) if complaint.is_abuse() && names(complaint, email) => {
            let reason = "complained: the recipient reported the mail as abuse".to_string();
            Some(NewReport {
                mail_id: record.id,
                kind: ReportKind::Complaint,
                status: complaint.feedback_type.clone(),
                diagnostic: None,
                at,
                suppress: Some(NewSuppression::new(email, reason.clone(), at)),
                reason,
            })
        }
        Report::Complaint(_) | Report::Other(_) => None,
    }
}

/// The part of a notification about `email`: the one naming it, or the only one (a
/// forwarding server may report the address it forwarded to).
fn about<'a>(statuses: &'a [RecipientStatus], email: &Email) -> Option<&'a RecipientStatus> {
    let same = |address: &Option<String>| {
        address
            .as_deref()
            .and_then(|a| Email::parse(a.to_string()).ok())
            .is_some_and(|a| a.canonical() == email.canonical())
    };
    statuses
        .iter()
        .find(|s| same(&s.final_recipient) || same(&s.original_recipient))
        .or(match statuses {
            [only] => Some(only),
            _ => None,
        })
}

/// True unless the complaint names another recipient (providers often name none: the VERP
/// address already says which mail it is).
fn names(complaint: &Complaint, email: &Email) -> bool {
    complaint.original_rcpt_to.as_deref().is_none_or(|a| {
        Email::parse(a.to_string()).is_ok_and(|a| a.canonical() == email.canonical())
    })
}
