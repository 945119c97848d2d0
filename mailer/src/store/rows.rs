//! The row types every backend of the store reads and writes: the stored delivery, what an
//! insert, a claim and an outcome carry, and the stored form of times (milliseconds since the
//! Unix epoch, which sort and compare the same way on SQLite and PostgreSQL).

use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, TimeZone, Utc};
use domain::{Email, Locale, MailRequest, MailRequestId, Recipient, Template};
use sea_orm::QueryResult;
use serde::Serialize;
use serde_json::{Map, Value};

/// One stored delivery, serialized as the contract's delivery record.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// The request id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// Which language.
    pub locale: Locale,
    /// The recipient.
    pub to: Recipient,
    /// The template variables (kept for sending, not shown).
    #[serde(skip)]
    pub vars: Map<String, Value>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// SMTP tries so far.
    pub attempts: u32,
    /// The last try's error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the request was stored.
    pub created_at: DateTime<Utc>,
    /// When the SMTP server took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// When the next try is due (internal).
    #[serde(skip)]
    pub next_attempt_at: DateTime<Utc>,
}

impl DeliveryRecord {
    /// The record an insert of `request` at `now` stores: queued, due at once.
    pub(crate) fn queued(request: MailRequest, now: DateTime<Utc>) -> Self {
        Self {
            id: request.id,
            template: request.template,
            locale: request.locale,
            to: request.to,
            vars: request.vars,
            status: DeliveryStatus::Queued,
            attempts: 0,
            last_error: None,
            created_at: now,
            sent_at: None,
            next_attempt_at: now,
        }
    }
}

/// One page of `GET /mails`.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The records, newest first.
    pub items: Vec<DeliveryRecord>,
    /// How many records match the filter.
    pub total: u64,
    /// The page number, from 1.
    pub page: u64,
    /// Records per page.
    pub per_page: u64,
}

/// What storing one request did.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// A new record was written: this one.
    Stored(DeliveryRecord),
    /// A record with this id already existed; nothing was written.
    Duplicate,
}

/// One row a claim took: its id and its tries so far, as stored. The rest of a record never
/// changes after it is stored, so the dispatcher keeps its own copy instead of reading the
/// whole row (the `vars` JSON included) back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    /// The request id.
    pub id: MailRequestId,
    /// SMTP tries before this one.
    pub attempts: u32,
}

/// The outcome of one try, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The request id.
    pub id: MailRequestId,
    /// `sent`, `retrying` or `failed`.
    pub status: DeliveryStatus,
    /// Tries so far, this one included.
    pub attempts: u32,
    /// The error of this try.
    pub error: Option<String>,
    /// When the try ended (`sent_at` of a sent mail).
    pub at: DateTime<Utc>,
    /// When the next try is due (`retrying`; else `at`).
    pub next_attempt_at: DateTime<Utc>,
}

impl Finished {
    /// `sent_at` as stored: only a sent mail has one.
    pub(crate) fn sent_at_millis(&self) -> Option<i64> {
        (self.status == DeliveryStatus::Sent).then(|| to_millis(self.at))
    }
}

/// The columns of a delivery row, in the order [`record_from_row`] reads them.
pub(crate) const COLUMNS: [&str; 12] = [
    "id",
    "template",
    "locale",
    "to_email",
    "to_name",
    "vars",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
];

/// Milliseconds since the epoch, the stored form of every time.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, MailError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| MailError::Corrupt(format!("the stored time {ms} is out of range")))
}

fn corrupt(e: impl std::fmt::Display) -> MailError {
    MailError::Corrupt(e.to_string())
}

/// The request id of a stored row.
pub(crate) fn parse_id(id: &str) -> Result<MailRequestId, MailError> {
    id.parse().map_err(corrupt)
}

/// A stored count of tries.
pub(crate) fn parse_attempts(attempts: i64) -> Result<u32, MailError> {
    u32::try_from(attempts).map_err(corrupt)
}

/// Reads a row selected with [`COLUMNS`].
pub(crate) fn record_from_row(row: &QueryResult) -> Result<DeliveryRecord, MailError> {
    let id: String = row.try_get("", "id")?;
    let vars: String = row.try_get("", "vars")?;
    let vars: Map<String, Value> = serde_json::from_str(&vars).map_err(corrupt)?;
    let sent_at: Option<i64> = row.try_get("", "sent_at")?;
    let attempts: i32 = row.try_get("", "attempts")?;
    Ok(DeliveryRecord {
        id: parse_id(&id)?,
        template: Template::parse(&row.try_get::<String>("", "template")?).map_err(corrupt)?,
        locale: Locale::parse(&row.try_get::<String>("", "locale")?).map_err(corrupt)?,
        to: Recipient {
            email: Email::parse(row.try_get::<String>("", "to_email")?).map_err(corrupt)?,
            name: row.try_get("", "to_name")?,
        },
        vars,
        status: DeliveryStatus::from_db(&row.try_get::<String>("", "status")?)?,
        attempts: parse_attempts(attempts.into())?,
        last_error: row.try_get("", "last_error")?,
        created_at: from_millis(row.try_get("", "created_at")?)?,
        sent_at: sent_at.map(from_millis).transpose()?,
        next_attempt_at: from_millis(row.try_get("", "next_attempt_at")?)?,
    })
}

/// Reads the `id, attempts` a claim returns.
pub(crate) fn claimed_from_row(row: &QueryResult) -> Result<Claimed, MailError> {
    let id: String = row.try_get("", "id")?;
    let attempts: i32 = row.try_get("", "attempts")?;
    Ok(Claimed {
        id: parse_id(&id)?,
        attempts: parse_attempts(attempts.into())?,
    })
}
