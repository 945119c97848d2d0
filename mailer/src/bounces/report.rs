//! What an inbound message says: a delivery status notification (RFC 3464, and RFC 6533's
//! internationalized form), a complaint (RFC 5965 ARF), or neither.
//!
//! mail-parser finds the parts (any nesting, any transfer encoding); the status and feedback
//! bodies, which are header-syntax fields that no crate types, are read by `fields`. Reading
//! never fails: whatever is not a report the caller can act on is `Report::Other`, with the
//! reason, so the caller can count it.

mod fields;
#[cfg(test)]
pub(super) mod tests;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders as _};

/// The `message/` subtypes of a status part: RFC 3464's, and RFC 6533's with UTF-8 fields.
const STATUS_SUBTYPES: [&str; 2] = ["delivery-status", "global-delivery-status"];

/// The longest diagnostic kept, in characters; remote servers' texts can run to pages.
const MAX_DIAGNOSTIC_CHARS: usize = 1000;

/// What one inbound message reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification: one status per recipient it names (at least one).
    Delivery(Vec<RecipientStatus>),
    /// A feedback report; only `feedback-type: abuse` is a complaint
    /// ([`Complaint::is_abuse`]).
    Complaint(Complaint),
    /// Anything else, with why: accepted and ignored.
    Other(&'static str),
}

/// One recipient's fields of a delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`, the address after its type (`rfc822;`, `utf-8;`).
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, the address after its type.
    pub original_recipient: Option<String>,
    /// `Action` in lower case: `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: Option<String>,
    /// `Status`, an RFC 3463 code `class.subject.detail` whose class is 2, 4 or 5 (`5.1.1`).
    pub status: String,
    /// `Diagnostic-Code` after its type (`smtp;`), unfolded, trimmed, at most 1000 characters.
    pub diagnostic: Option<String>,
}

/// The fields of a feedback report that say which mail was reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// `Feedback-Type` in lower case: `abuse`, `fraud`, `not-spam`, `virus`, `other`, ….
    pub feedback_type: String,
    /// `Original-Rcpt-To`, the address only (providers often leave it out).
    pub original_rcpt_to: Option<String>,
    /// `Original-Mail-From`, the address only.
    pub original_mail_from: Option<String>,
}

impl Complaint {
    /// Whether the report is a complaint: `feedback-type: abuse`.
    pub fn is_abuse(&self) -> bool {
        self.feedback_type == "abuse"
    }
}

/// Reads one inbound message (its bytes as received after DATA).
pub fn read(raw: &[u8]) -> Report {
    let Some(message) = MessageParser::new().parse(raw) else {
        return Report::Other("unparseable");
    };
    let Some((report_type, parts)) = find_report(&message) else {
        return Report::Other("not a report");
    };
    if report_type.eq_ignore_ascii_case("delivery-status") {
        match find_part(&message, parts, &STATUS_SUBTYPES) {
            Some(part) => delivery(part),
            None => Report::Other("no delivery-status part"),
        }
    } else if report_type.eq_ignore_ascii_case("feedback-report") {
        match find_part(&message, parts, &["feedback-report"]) {
            Some(part) => complaint(part),
            None => Report::Other("no feedback-report part"),
        }
    } else {
        Report::Other("neither a delivery status nor a feedback report")
    }
}

/// The first `multipart/report` among the message's own parts (not those of a message it
/// returns): its `report-type` and its parts. Some servers wrap the report in another
/// multipart, so it need not be the root.
fn find_report<'m>(message: &'m Message<'_>) -> Option<(&'m str, &'m [u32])> {
    message.parts.iter().find_map(|part| {
        let content_type = part.content_type()?;
        let is_report =
            content_type.ctype() == "multipart" && content_type.subtype() == Some("report");
        if !is_report {
            return None;
        }
        let report_type = content_type.attribute("report-type").unwrap_or_default();
        Some((report_type, part.sub_parts()?))
    })
}

/// The first of `ids` whose type is `message/` and one of `subtypes`.
fn find_part<'m, 'x>(
    message: &'m Message<'x>,
    ids: &[u32],
    subtypes: &[&str],
) -> Option<&'m MessagePart<'x>> {
    ids.iter().filter_map(|&id| message.part(id)).find(|part| {
        part.content_type().is_some_and(|content_type| {
            content_type.ctype() == "message"
                && content_type
                    .subtype()
                    .is_some_and(|subtype| subtypes.contains(&subtype))
        })
    })
}

/// The per-recipient groups of a delivery-status body. The per-message group (Reporting-MTA,
/// Arrival-Date) names no recipient and no status, so it is skipped with any other such
/// group; a recipient whose status is missing or malformed is skipped too.
fn delivery(part: &MessagePart<'_>) -> Report {
    let body = String::from_utf8_lossy(part.contents());
    let recipients: Vec<RecipientStatus> = fields::groups(&body)
        .iter()
        .filter_map(|group| {
            Some(RecipientStatus {
                status: fields::status(group.get("status")?)?,
                final_recipient: group.get("final-recipient").and_then(fields::address),
                original_recipient: group.get("original-recipient").and_then(fields::address),
                action: group.get("action").and_then(fields::keyword),
                diagnostic: group
                    .get("diagnostic-code")
                    .and_then(|value| fields::diagnostic(value, MAX_DIAGNOSTIC_CHARS)),
            })
        })
        .collect();
    if recipients.is_empty() {
        Report::Other("no recipient status")
    } else {
        Report::Delivery(recipients)
    }
}

/// The fields of a feedback-report body (one group; the first that has a type).
fn complaint(part: &MessagePart<'_>) -> Report {
    let body = String::from_utf8_lossy(part.contents());
    let groups = fields::groups(&body);
    let Some(group) = groups.iter().find(|group| group.has("feedback-type")) else {
        return Report::Other("no feedback type");
    };
    let Some(feedback_type) = group.get("feedback-type").and_then(fields::keyword) else {
        return Report::Other("no feedback type");
    };
    Report::Complaint(Complaint {
        feedback_type,
        original_rcpt_to: group
            .get("original-rcpt-to")
            .and_then(fields::plain_address),
        original_mail_from: group
            .get("original-mail-from")
            .and_then(fields::plain_address),
    })
}
