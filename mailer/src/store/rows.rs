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
use utoipa::ToSchema;

/// One stored delivery, serialized as the contract's delivery record.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    #[schema(nullable = false)]
    pub last_error: Option<String>,
    /// When the request was stored.
    pub created_at: DateTime<Utc>,
    /// When the SMTP server took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sent_at: Option<DateTime<Utc>>,
    /// When the next try is due (internal).
    #[serde(skip)]
    pub next_attempt_at: DateTime<Utc>,
    /// The store-wide position of its last change (`mail-activity`'s `cursor`).
    #[serde(skip)]
    pub cursor: Cursor,
    /// The socket id of the service client that sent the request (or last retried it), to
    /// address its `mail-status` from whichever mailer delivers it.
    #[serde(skip)]
    pub sender: Option<String>,
    /// The trace context of the span that accepted the request, which each delivery
    /// attempt continues (internal).
    #[serde(skip)]
    pub traceparent: Option<String>,
    /// Whether the recipient's records are erased once this delivery ends (the request's
    /// `erase_recipient`).
    #[serde(skip)]
    pub erase_recipient: bool,
    /// The request's `requested_at` (internal); none for a record stored before it was kept.
    #[serde(skip)]
    pub requested_at: Option<DateTime<Utc>>,
    /// The reports sent back about it after its handoff (bounces, delays, complaints),
    /// oldest first; shown by `GET /mails/{id}` when there are some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub reports: Vec<DeliveryReport>,
}

/// A report another server sent back about a delivered mail (`mailer.bounces`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryReport {
    /// `bounce` (a 5.x.x delivery status: the mail is `bounced`), `delay` (a 4.x.x one: the
    /// status stays) or `complaint` (an abuse report: the mail is `complained`).
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// The delivery status code (`5.1.1`), or the complaint's feedback type (`abuse`).
    pub status: String,
    /// The receiving server's diagnostic, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub diagnostic: Option<String>,
    /// When it was received.
    pub at: DateTime<Utc>,
}

/// What a report says of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Undeliverable for good (5.x.x): `bounced`, and the address suppressed.
    Bounce,
    /// Not delivered yet (4.x.x): recorded, nothing else changes.
    Delay,
    /// An abuse report: `complained`, and the address suppressed.
    Complaint,
}

impl ReportKind {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Bounce => "bounce",
            ReportKind::Delay => "delay",
            ReportKind::Complaint => "complaint",
        }
    }

    pub(crate) fn from_db(value: &str) -> &'static str {
        match value {
            "bounce" => "bounce",
            "complaint" => "complaint",
            _ => "delay",
        }
    }

    /// The status a `sent` delivery takes, if any.
    pub fn new_status(self) -> Option<DeliveryStatus> {
        match self {
            ReportKind::Bounce => Some(DeliveryStatus::Bounced),
            ReportKind::Complaint => Some(DeliveryStatus::Complained),
            ReportKind::Delay => None,
        }
    }
}

/// A report to record about delivery `mail_id`.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub mail_id: MailRequestId,
    pub kind: ReportKind,
    /// The status code or feedback type.
    pub status: String,
    pub diagnostic: Option<String>,
    pub at: DateTime<Utc>,
    /// The delivery's `last_error` once it is `bounced` or `complained`.
    pub reason: String,
    /// The entry put on the suppression list with the change.
    pub suppress: Option<NewSuppression>,
}

/// Where a change stands in the store-wide order of changes: every write that changes a
/// delivery's public status gives it the next cursor. Shown as 16 decimal digits, so the
/// strings sort as the numbers do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(pub i64);

impl Cursor {
    /// Reads a cursor as shown (leading zeros optional); none for anything else.
    pub fn parse(text: &str) -> Option<Cursor> {
        if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Cursor)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016}", self.0)
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl DeliveryRecord {
    /// The record an insert of `request` at `now` stores: queued and due at once, or, when
    /// `suppressed` gives the reason its recipient is on the suppression list, `suppressed`
    /// without its `vars` (it will never be rendered).
    pub(crate) fn stored(
        request: MailRequest,
        now: DateTime<Utc>,
        suppressed: Option<String>,
        cursor: Cursor,
        sender: Option<String>,
    ) -> Self {
        let (status, vars) = match suppressed {
            Some(_) => (DeliveryStatus::Suppressed, Map::new()),
            None => (DeliveryStatus::Queued, request.vars),
        };
        Self {
            id: request.id,
            template: request.template,
            locale: request.locale,
            to: request.to,
            vars,
            status,
            attempts: 0,
            last_error: suppressed.map(|reason| suppressed_error(&reason)),
            created_at: now,
            sent_at: None,
            next_attempt_at: now,
            cursor,
            sender,
            traceparent: request.traceparent,
            erase_recipient: request.erase_recipient,
            requested_at: Some(request.requested_at),
            reports: Vec::new(),
        }
    }
}

/// The `last_error` of a delivery stored `suppressed`.
pub(crate) fn suppressed_error(reason: &str) -> String {
    format!("not sent: the address is on the suppression list ({reason})")
}

/// An address to put on the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    /// The address as it was given: what `GET /suppressions` shows. The list is kept by its
    /// lookup key (`SuppressionKeys::lookup_key`), so every spelling of the address
    /// (`Ada@Bücher.de`, `ada@xn--bcher-kva.de`) is one entry.
    pub email: Email,
    /// Why: the SMTP server's refusal, or what the operator wrote.
    pub reason: String,
    /// When it was added.
    pub at: DateTime<Utc>,
}

impl NewSuppression {
    /// The entry for `email`, added at `at` for `reason`.
    pub fn new(email: &Email, reason: String, at: DateTime<Utc>) -> Self {
        Self {
            email: email.clone(),
            reason,
            at,
        }
    }
}

/// A delivery that asked for its recipient's erasure once it ended (a deleted account's last
/// mail). The erasure takes what was requested for that address before it, and it: a request
/// made after it (a new account under the same address) keeps its record, and its mail.
#[derive(Debug, Clone)]
pub struct LastMail {
    /// The delivery's id.
    pub id: MailRequestId,
    /// Its recipient.
    pub to: Email,
    /// When it was requested (stored, for a record from before requests' times were kept).
    pub requested_at: DateTime<Utc>,
}

impl LastMail {
    /// The erasure `record` asks for once it ends, if it asks for one.
    pub fn of(record: &DeliveryRecord) -> Option<Self> {
        record.erase_recipient.then(|| Self {
            id: record.id,
            to: record.to.email.clone(),
            requested_at: record.requested_at.unwrap_or(record.created_at),
        })
    }
}

/// What an entry's `reason` becomes when its address is erased: an SMTP server's refusal
/// often quotes the address, so the first reason goes with it.
pub(crate) const ERASED_REASON: &str =
    "the address was erased on request; the entry stays so that it is never mailed again";

/// One entry of the suppression list, as `GET /suppressions` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suppression {
    /// The address as it was first added; null once it was erased
    /// (`DELETE /recipients/{email}`), when the list keeps only its keyed hash.
    pub email: Option<String>,
    /// Why it is there.
    pub reason: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// One page of `GET /suppressions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressionPage {
    /// Newest first.
    pub items: Vec<Suppression>,
    /// How many entries there are.
    pub total: u64,
    /// The page number, from 1.
    pub page: u64,
    /// Entries per page.
    pub per_page: u64,
}

/// One page of `GET /mails`.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// The cursors a write of outcomes gave, one per delivery it changed.
pub type Cursors = std::collections::HashMap<MailRequestId, Cursor>;

/// What storing one request did.
// `Stored` is the common case and moves on to the delivery queue as it is; boxing it would
// allocate once more per accepted mail to shrink the rare `Duplicate`.
#[allow(clippy::large_enum_variant)]
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
    /// The recipient to put on the suppression list in the same write (a `failed` try
    /// whose recipient the server refused for good).
    pub suppress: Option<NewSuppression>,
}

impl Finished {
    /// `sent_at` as stored: only a sent mail has one.
    pub(crate) fn sent_at_millis(&self) -> Option<i64> {
        (self.status == DeliveryStatus::Sent).then(|| to_millis(self.at))
    }
}

/// A rare write an operator asks for, made by the store's one writer like every other.
/// Each is one conditional statement: the store, not a lock in memory, decides which of two
/// racing writes wins (a cancel and a claim both need the row `queued` or `retrying`).
#[derive(Debug, Clone)]
pub(crate) enum Operation {
    /// Puts those of the ids still `failed` back to `queued`, due at the time given; with a
    /// socket id, that socket becomes the one that hears their statuses.
    Requeue(Vec<MailRequestId>, DateTime<Utc>, Option<String>),
    /// Makes the delivery `cancelled` if it is `queued` or `retrying`, at the time given.
    Cancel(MailRequestId, DateTime<Utc>),
    /// Adds an address to the suppression list unless it is there.
    Suppress(NewSuppression),
    /// Removes an address (its lookup key) from the suppression list.
    Unsuppress(String),
    /// Erases the address as written, and its first reason, from the entry of this lookup
    /// key, which stays on the list.
    ForgetAddress(String),
    /// Deletes the deliveries of these ids (retention and erasure), in one statement.
    Delete(Vec<MailRequestId>),
    /// A write of the webhooks' tables.
    Webhook(super::webhooks::WebhookWrite),
    /// Records a report sent back about a delivery, and what it changes: a `sent` delivery
    /// becomes `bounced` or `complained`, its address suppressed.
    Report(NewReport),
}

/// What an [`Operation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operated {
    /// `Requeue`: the ids it moved.
    Moved(Vec<MailRequestId>),
    /// `Cancel`, `Suppress`, `Unsuppress`, `ForgetAddress`: whether a row changed.
    Changed(bool),
    /// `Delete`: how many rows went.
    Deleted(u64),
    /// A webhook claim: the messages it took.
    Claimed(Vec<String>),
    /// `Report`: the cursor of the status change, when there was one.
    Reported(Option<Cursor>),
}

/// The columns of a delivery row, in the order [`record_from_row`] reads them.
pub(crate) const COLUMNS: [&str; 17] = [
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
    "cursor",
    "sender",
    "traceparent",
    "erase_recipient",
    "requested_at",
];

/// Milliseconds since the epoch, the stored form of every time.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, MailError> {
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

/// Reads a suppression-list row (`email, reason, created_at`).
pub(crate) fn suppression_from_row(row: &QueryResult) -> Result<Suppression, MailError> {
    Ok(Suppression {
        email: row.try_get("", "email")?,
        reason: row.try_get("", "reason")?,
        created_at: from_millis(row.try_get("", "created_at")?)?,
    })
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
        cursor: Cursor(row.try_get::<Option<i64>>("", "cursor")?.unwrap_or(0)),
        sender: row.try_get("", "sender")?,
        traceparent: row.try_get("", "traceparent")?,
        erase_recipient: row.try_get::<i32>("", "erase_recipient")? != 0,
        requested_at: row
            .try_get::<Option<i64>>("", "requested_at")?
            .map(from_millis)
            .transpose()?,
        reports: Vec::new(),
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
