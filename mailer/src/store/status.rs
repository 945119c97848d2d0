//! The statuses a delivery goes through: `queued` → (`sending`) → `sent`, or `retrying`
//! between tries, or `failed`. `sending` is internal and shown as `queued`.

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
}

impl DeliveryStatus {
    /// The value stored in the `status` column.
    pub fn as_db(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
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
            other => {
                return Err(MailError::Corrupt(format!(
                    "the stored status {other:?} is unknown"
                )));
            }
        })
    }

    /// Parses a public filter value (`?status=`), or says which values exist.
    pub fn parse_public(value: &str) -> Result<Self, MailError> {
        match value {
            "queued" | "sent" | "retrying" | "failed" => Self::from_db(value),
            other => Err(MailError::invalid(
                "invalid_status",
                format!("status {other:?} is unknown: expected queued, sent, retrying or failed"),
            )),
        }
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_public())
    }
}
