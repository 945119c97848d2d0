//! The statuses a delivery goes through: `queued` → (`sending`) → `sent`, or `retrying`
//! between tries, or `failed`; an operator may put a `failed` one back to `queued` (a retry)
//! or stop a `queued` or `retrying` one (`cancelled`); a request to an address on the
//! suppression list is stored `suppressed`. A `sent` one may later be reported back
//! (`mailer.bounces`): `bounced` by a delivery status notification, `complained` by an abuse
//! report. `sending` is internal and shown as `queued`.

use crate::error::MailError;
use serde::Serialize;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Stored, waiting for a sender.
    Queued,
    /// Claimed by a sender; the SMTP handoff may be under way (shown as `queued`).
    Sending,
    /// The SMTP server took it.
    Sent,
    /// A try failed in a way that may pass; another try is scheduled.
    Retrying,
    /// Given up: a permanent SMTP error, or `max_attempts` tries.
    Failed,
    /// Stopped by an operator before it was handed to SMTP; never sent.
    Cancelled,
    /// Its recipient was on the suppression list when it arrived; never sent.
    Suppressed,
    /// Sent, then reported undeliverable by a delivery status notification (5.x.x); its
    /// recipient is suppressed.
    Bounced,
    /// Sent, then reported as abuse by its recipient (an ARF complaint); its recipient is
    /// suppressed.
    Complained,
}

/// Every status the outside world sees, in the order a delivery meets them.
pub const PUBLIC_STATUSES: [&str; 8] = [
    "queued",
    "retrying",
    "sent",
    "failed",
    "cancelled",
    "suppressed",
    "bounced",
    "complained",
];

impl DeliveryStatus {
    /// The value stored in the `status` column.
    pub fn as_db(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Suppressed => "suppressed",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Complained => "complained",
        }
    }

    /// The status the outside world sees (`sending` is shown as `queued`).
    pub fn as_public(self) -> &'static str {
        match self {
            DeliveryStatus::Sending => "queued",
            other => other.as_db(),
        }
    }

    /// Parses a stored value.
    pub fn from_db(value: &str) -> Result<Self, MailError> {
        Ok(match value {
            "queued" => DeliveryStatus::Queued,
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "retrying" => DeliveryStatus::Retrying,
            "failed" => DeliveryStatus::Failed,
            "cancelled" => DeliveryStatus::Cancelled,
            "suppressed" => DeliveryStatus::Suppressed,
            "bounced" => DeliveryStatus::Bounced,
            "complained" => DeliveryStatus::Complained,
            other => {
                return Err(MailError::Corrupt(format!(
                    "the stored status {other:?} is unknown"
                )));
            }
        })
    }

    /// Parses a public filter value (`?status=`), or says which values exist.
    pub fn parse_public(value: &str) -> Result<Self, MailError> {
        if PUBLIC_STATUSES.contains(&value) {
            return Self::from_db(value);
        }
        Err(MailError::invalid(
            "invalid_status",
            format!(
                "status {value:?} is unknown: expected one of {}",
                PUBLIC_STATUSES.join(", ")
            ),
        ))
    }
}

impl DeliveryStatus {
    /// True for a status nothing changes by itself any more: `sent`, `failed`, `cancelled`,
    /// `suppressed`, `bounced`, `complained` (only an operator's retry moves a `failed` one,
    /// and only a report sent back a `sent` one).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Sent
                | DeliveryStatus::Failed
                | DeliveryStatus::Cancelled
                | DeliveryStatus::Suppressed
                | DeliveryStatus::Bounced
                | DeliveryStatus::Complained
        )
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_public())
    }
}

/// Described as it is serialized: one of [`PUBLIC_STATUSES`].
impl utoipa::PartialSchema for DeliveryStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(PUBLIC_STATUSES))
            .description(Some(
                "Where a delivery stands, as the outside world sees it (`sending` is shown as `queued`).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for DeliveryStatus {}
