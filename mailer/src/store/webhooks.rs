//! The store's side of webhooks: endpoints, the outbox of events the triggers of
//! `mail_deliveries` fill (see the migration `CreateWebhooks`), and the attempts to deliver
//! them. Reads are on the pool; every write is a [`WebhookWrite`] made by the store's one
//! writer, as a few statements in one transaction.

use super::migration::{DELIVERIES, WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS, WEBHOOK_MESSAGES};
use super::rows::{from_millis, parse_attempts, parse_id, to_millis};
use super::status::DeliveryStatus;
use crate::error::MailError;
use chrono::{DateTime, Utc};
use domain::{Email, MailRequestId, Recipient, Template};
use sea_orm::sea_query::{
    Alias, DeleteStatement, Expr, ExprTrait, InsertStatement, JoinType, Order, Query,
    SelectStatement, UpdateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// An endpoint failing for this long, every attempt, is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// One webhook endpoint, as `GET /webhooks` shows it (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    /// `ep_` and 32 hexadecimal digits.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The statuses it receives (`sent`, `failed`, …); null for every status.
    pub events: Option<Vec<String>>,
    /// What the operator wrote about it.
    pub description: Option<String>,
    /// False once every attempt failed for 5 days (or after `PATCH` with `enabled: false`):
    /// no event is written or sent for it until it is enabled again.
    pub enabled: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Since when every attempt to reach it failed; null when the last one succeeded.
    pub failing_since: Option<DateTime<Utc>>,
}

/// An endpoint to add.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub url: String,
    /// The statuses it wants; none for every status.
    pub events: Option<Vec<&'static str>>,
    pub description: Option<String>,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
    pub at: DateTime<Utc>,
}

/// What a `PATCH /webhooks/{id}` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    /// `Some(None)`: every status.
    pub events: Option<Option<Vec<&'static str>>>,
    /// `Some(None)`: no description.
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// An event due for delivery, with what its body and signature need.
#[derive(Debug, Clone)]
pub struct DueMessage {
    /// The message id, sent as `webhook-id`: the same on every attempt.
    pub id: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub mail_id: MailRequestId,
    pub cursor: i64,
    pub status: DeliveryStatus,
    /// The mail's SMTP tries at the change.
    pub attempts: u32,
    pub error: Option<String>,
    /// When the status changed.
    pub at: DateTime<Utc>,
    /// Attempts to deliver this event so far.
    pub tries: u32,
    pub template: Template,
    pub to: Recipient,
}

impl DueMessage {
    /// `mail.<status>`.
    pub fn event_type(&self) -> String {
        format!("mail.{}", self.status.as_public())
    }
}

/// What becomes of a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageNext {
    /// The endpoint answered 2xx.
    Delivered,
    /// Tried again at this time.
    RetryAt(DateTime<Utc>),
    /// Given up.
    Failed,
    /// An operator's extra attempt that failed: the message keeps its state and schedule.
    Unchanged,
}

/// One attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptDone {
    /// The attempt as it is listed.
    pub shown: WebhookAttempt,
    pub endpoint_id: String,
    /// The event's place in its mail's order.
    pub cursor: i64,
    pub next: MessageNext,
}

impl AttemptDone {
    /// True when the endpoint answered 2xx, which ends a failing spell.
    pub fn succeeded(&self) -> bool {
        self.shown.error.is_none()
    }
}

/// One attempt, as `GET /webhooks/{id}/attempts` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// `att_` and 32 hexadecimal digits.
    pub id: String,
    /// The event's id (`webhook-id`), the same on every attempt of one event.
    pub message_id: String,
    /// The mail the event is about.
    pub mail_id: MailRequestId,
    /// `mail.<status>`.
    pub event_type: String,
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status; null when none came (refused, timed out).
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Why it failed, when it did without a status, or with a non-2xx one.
    pub error: Option<String>,
}

/// One page of attempts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptPage {
    pub items: Vec<WebhookAttempt>,
    /// How many attempts the endpoint has.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// The webhook writes the store's writer makes.
#[derive(Debug, Clone)]
pub(crate) enum WebhookWrite {
    /// Adds an endpoint.
    Add(NewEndpoint),
    /// Deletes an endpoint with its messages and attempts.
    Remove(String),
    /// Changes an endpoint (enabling one also ends its failing spell).
    Change(String, EndpointChange),
    /// Takes the pending messages of these ids that no mailer holds, until the time given;
    /// answers those it took.
    Claim(Vec<String>, DateTime<Utc>, DateTime<Utc>),
    /// Records attempts: each attempt, its message's next state, its endpoint's spell.
    Record(Vec<AttemptDone>),
    /// Lets go of every message held (at start, by the only mailer of a store).
    Release,
}

/// One statement of a [`WebhookWrite`].
pub(crate) enum Statement {
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
    /// PostgreSQL: holds the endpoints table until the commit, so that two mailers adding
    /// and removing endpoints at once agree on whether any is left (SQLite has one writer).
    LockEndpoints,
    /// Makes the outbox triggers (`migration::outbox_triggers`) unless they exist.
    OutboxTriggers,
    /// Drops the outbox triggers when no endpoint is left.
    DropOutboxTriggersIfUnused,
}

/// The SQL that counts endpoints, for [`Statement::DropOutboxTriggersIfUnused`].
pub(crate) fn endpoint_count_statement() -> SelectStatement {
    Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from(WEBHOOK_ENDPOINTS)
        .to_owned()
}

fn built<T>(result: Result<T, sea_orm::sea_query::error::Error>) -> Result<T, MailError> {
    result.map_err(|e| MailError::Write(e.to_string()))
}

fn events_column(events: &Option<Vec<&'static str>>) -> Option<String> {
    events.as_ref().map(|list| format!(",{},", list.join(",")))
}

/// The statements of `write` (all but `Claim`), in order. The count of changed rows of the
/// first insert, update or delete says whether the write found its endpoint.
pub(crate) fn statements(write: &WebhookWrite) -> Result<Vec<Statement>, MailError> {
    Ok(match write {
        WebhookWrite::Add(endpoint) => {
            let mut q = Query::insert();
            q.into_table(WEBHOOK_ENDPOINTS).columns([
                "id",
                "url",
                "events",
                "description",
                "secret",
                "enabled",
                "created_at",
            ]);
            built(q.values([
                endpoint.id.clone().into(),
                endpoint.url.clone().into(),
                events_column(&endpoint.events).into(),
                endpoint.description.clone().into(),
                endpoint.secret.clone().into(),
                1i32.into(),
                to_millis(endpoint.at).into(),
            ]))?;
            vec![
                Statement::LockEndpoints,
                Statement::Insert(q),
                Statement::OutboxTriggers,
            ]
        }
        WebhookWrite::Remove(id) => std::iter::once(Statement::LockEndpoints)
            .chain(
                [WEBHOOK_ENDPOINTS, WEBHOOK_MESSAGES, WEBHOOK_ATTEMPTS]
                    .into_iter()
                    .map(|table| {
                        let column = if table == WEBHOOK_ENDPOINTS {
                            "id"
                        } else {
                            "endpoint_id"
                        };
                        Statement::Delete(
                            Query::delete()
                                .from_table(table)
                                .and_where(Expr::col(column).eq(id.clone()))
                                .to_owned(),
                        )
                    }),
            )
            .chain(std::iter::once(Statement::DropOutboxTriggersIfUnused))
            .collect(),
        WebhookWrite::Change(id, change) => {
            let mut q = Query::update();
            q.table(WEBHOOK_ENDPOINTS)
                .and_where(Expr::col("id").eq(id.clone()));
            // Always one value, so that a change of nothing still finds the row.
            q.value("id", id.clone());
            if let Some(url) = &change.url {
                q.value("url", url.clone());
            }
            if let Some(events) = &change.events {
                q.value("events", events_column(events));
            }
            if let Some(description) = &change.description {
                q.value("description", description.clone());
            }
            let mut statements = vec![];
            if let Some(enabled) = change.enabled {
                q.value("enabled", i32::from(enabled));
                if enabled {
                    q.value("failing_since", Option::<i64>::None);
                }
            }
            statements.push(Statement::Update(q));
            match change.enabled {
                Some(false) => statements.push(Statement::Update(park_if_disabled(id))),
                // What waited while it was disabled is due now.
                Some(true) => statements.push(Statement::Update(
                    Query::update()
                        .table(WEBHOOK_MESSAGES)
                        .value("next_at", to_millis(Utc::now()))
                        .and_where(Expr::col("endpoint_id").eq(id.clone()))
                        .and_where(Expr::col("state").eq("pending"))
                        .and_where(Expr::col("next_at").eq(PARKED))
                        .to_owned(),
                )),
                None => {}
            }
            statements
        }
        WebhookWrite::Claim(..) => Vec::new(),
        WebhookWrite::Record(attempts) => {
            let mut statements = Vec::with_capacity(attempts.len() * 3);
            for attempt in attempts {
                record(attempt, &mut statements)?;
            }
            statements
        }
        WebhookWrite::Release => vec![Statement::Update(
            Query::update()
                .table(WEBHOOK_MESSAGES)
                .value("locked_until", Option::<i64>::None)
                .and_where(Expr::col("locked_until").is_not_null())
                .to_owned(),
        )],
    })
}

/// The statements that record `attempt`.
fn record(attempt: &AttemptDone, statements: &mut Vec<Statement>) -> Result<(), MailError> {
    let at = to_millis(attempt.shown.at);
    let mut insert = Query::insert();
    insert.into_table(WEBHOOK_ATTEMPTS).columns([
        "id",
        "endpoint_id",
        "message_id",
        "mail_id",
        "event_type",
        "at",
        "status_code",
        "duration_ms",
        "error",
    ]);
    built(
        insert.values([
            attempt.shown.id.clone().into(),
            attempt.endpoint_id.clone().into(),
            attempt.shown.message_id.clone().into(),
            attempt.shown.mail_id.to_string().into(),
            attempt.shown.event_type.clone().into(),
            at.into(),
            attempt.shown.status_code.map(i32::from).into(),
            i64::try_from(attempt.shown.duration_ms)
                .unwrap_or(i64::MAX)
                .into(),
            attempt.shown.error.clone().into(),
        ]),
    )?;
    statements.push(Statement::Insert(insert));
    let mut message = Query::update();
    message
        .table(WEBHOOK_MESSAGES)
        .value("locked_until", Option::<i64>::None)
        .and_where(Expr::col("id").eq(attempt.shown.message_id.clone()));
    match attempt.next {
        MessageNext::Delivered => {
            message.value("state", "delivered");
        }
        MessageNext::RetryAt(next) => {
            message.value("next_at", to_millis(next));
        }
        MessageNext::Failed => {
            message.value("state", "failed");
        }
        MessageNext::Unchanged => {}
    }
    if attempt.next != MessageNext::Unchanged {
        message.value("tries", Expr::col("tries").add(1));
    }
    statements.push(Statement::Update(message));
    // The mail's later events to this endpoint wait for this one: while it waits for its
    // next try, so do they, out of the due range the delivery loop reads; once it is
    // delivered or given up, they are due.
    match attempt.next {
        MessageNext::RetryAt(next) => statements.push(Statement::Update(
            later_events(attempt)
                .value("next_at", to_millis(next))
                .and_where(Expr::col("next_at").lt(to_millis(next)))
                .to_owned(),
        )),
        MessageNext::Delivered | MessageNext::Failed => statements.push(Statement::Update(
            later_events(attempt)
                .value("next_at", at)
                .and_where(Expr::col("next_at").gt(at))
                .to_owned(),
        )),
        MessageNext::Unchanged => {}
    }
    if attempt.succeeded() {
        statements.push(Statement::Update(
            Query::update()
                .table(WEBHOOK_ENDPOINTS)
                .value("failing_since", Option::<i64>::None)
                .and_where(Expr::col("id").eq(attempt.endpoint_id.clone()))
                .and_where(Expr::col("failing_since").is_not_null())
                .to_owned(),
        ));
    } else {
        statements.push(Statement::Update(
            Query::update()
                .table(WEBHOOK_ENDPOINTS)
                .value("failing_since", at)
                .and_where(Expr::col("id").eq(attempt.endpoint_id.clone()))
                .and_where(Expr::col("failing_since").is_null())
                .to_owned(),
        ));
        let since = to_millis(
            attempt.shown.at - chrono::Duration::from_std(DISABLE_AFTER).unwrap_or_default(),
        );
        statements.push(Statement::Update(
            Query::update()
                .table(WEBHOOK_ENDPOINTS)
                .value("enabled", 0i32)
                .and_where(Expr::col("id").eq(attempt.endpoint_id.clone()))
                .and_where(Expr::col("failing_since").lte(since))
                .to_owned(),
        ));
        statements.push(Statement::Update(park_if_disabled(&attempt.endpoint_id)));
    }
    Ok(())
}

/// The pending events of `attempt`'s mail to its endpoint after it.
fn later_events(attempt: &AttemptDone) -> UpdateStatement {
    Query::update()
        .table(WEBHOOK_MESSAGES)
        .and_where(Expr::col("mail_id").eq(attempt.shown.mail_id.to_string()))
        .and_where(Expr::col("endpoint_id").eq(attempt.endpoint_id.clone()))
        .and_where(Expr::col("cursor").gt(attempt.cursor))
        .and_where(Expr::col("state").eq("pending"))
        .to_owned()
}

/// When a disabled endpoint's events are due: never, until it is enabled again. Out of the
/// due range, a disabled endpoint's backlog costs the delivery loop nothing.
const PARKED: i64 = 253_402_300_799_000;

/// Parks the pending events of endpoint `id` if it is disabled.
fn park_if_disabled(id: &str) -> UpdateStatement {
    Query::update()
        .table(WEBHOOK_MESSAGES)
        .value("next_at", PARKED)
        .and_where(Expr::col("endpoint_id").eq(id))
        .and_where(Expr::col("state").eq("pending"))
        .and_where(
            Expr::col("endpoint_id").in_subquery(
                Query::select()
                    .column("id")
                    .from(WEBHOOK_ENDPOINTS)
                    .and_where(Expr::col("id").eq(id))
                    .and_where(Expr::col("enabled").eq(0))
                    .to_owned(),
            ),
        )
        .to_owned()
}

/// The claim of `ids` until `until`, at `now`; returns the `id` of each message it took.
pub(crate) fn claim(ids: &[String], now: DateTime<Utc>, until: DateTime<Utc>) -> UpdateStatement {
    let now = to_millis(now);
    Query::update()
        .table(WEBHOOK_MESSAGES)
        .value("locked_until", to_millis(until))
        .and_where(Expr::col("id").is_in(ids.iter().cloned()))
        .and_where(Expr::col("state").eq("pending"))
        .and_where(
            Expr::col("locked_until")
                .is_null()
                .or(Expr::col("locked_until").lte(now)),
        )
        .returning(Query::returning().column("id"))
        .to_owned()
}

const ENDPOINT_COLUMNS: [&str; 7] = [
    "id",
    "url",
    "events",
    "description",
    "enabled",
    "created_at",
    "failing_since",
];

fn endpoint_from_row(row: &QueryResult) -> Result<WebhookEndpoint, MailError> {
    let events: Option<String> = row.try_get("", "events")?;
    Ok(WebhookEndpoint {
        id: row.try_get("", "id")?,
        url: row.try_get("", "url")?,
        events: events.map(|list| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }),
        description: row.try_get("", "description")?,
        enabled: row.try_get::<i32>("", "enabled")? != 0,
        created_at: from_millis(row.try_get("", "created_at")?)?,
        failing_since: row
            .try_get::<Option<i64>>("", "failing_since")?
            .map(from_millis)
            .transpose()?,
    })
}

/// Every endpoint, oldest first.
pub(crate) async fn endpoints(db: &DatabaseConnection) -> Result<Vec<WebhookEndpoint>, MailError> {
    let q = Query::select()
        .columns(ENDPOINT_COLUMNS)
        .from(WEBHOOK_ENDPOINTS)
        .order_by("created_at", Order::Asc)
        .order_by("id", Order::Asc)
        .to_owned();
    db.query_all(&q)
        .await?
        .iter()
        .map(endpoint_from_row)
        .collect()
}

/// The endpoint `id`, if any.
pub(crate) async fn endpoint(
    db: &DatabaseConnection,
    id: &str,
) -> Result<Option<WebhookEndpoint>, MailError> {
    let q = Query::select()
        .columns(ENDPOINT_COLUMNS)
        .from(WEBHOOK_ENDPOINTS)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    db.query_one(&q)
        .await?
        .map(|row| endpoint_from_row(&row))
        .transpose()
}

/// How many endpoints there are.
pub(crate) async fn endpoint_count(db: &DatabaseConnection) -> Result<u64, MailError> {
    count(db, Query::select().from(WEBHOOK_ENDPOINTS).to_owned()).await
}

/// How many events wait for delivery.
pub(crate) async fn backlog(db: &DatabaseConnection) -> Result<u64, MailError> {
    count(
        db,
        Query::select()
            .from(WEBHOOK_MESSAGES)
            .and_where(Expr::col("state").eq("pending"))
            .to_owned(),
    )
    .await
}

async fn count(db: &DatabaseConnection, mut q: SelectStatement) -> Result<u64, MailError> {
    q.expr_as(Expr::cust("COUNT(*)"), "n");
    let n: i64 = match db.query_one(&q).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

fn m(column: &'static str) -> Expr {
    Expr::col((Alias::new("m"), Alias::new(column)))
}

fn due_select() -> SelectStatement {
    Query::select()
        .expr_as(m("id"), "id")
        .expr_as(m("endpoint_id"), "endpoint_id")
        .expr_as(m("mail_id"), "mail_id")
        .expr_as(m("cursor"), "cursor")
        .expr_as(m("status"), "status")
        .expr_as(m("attempts"), "attempts")
        .expr_as(m("error"), "error")
        .expr_as(m("at"), "at")
        .expr_as(m("tries"), "tries")
        .expr_as(Expr::col((Alias::new("e"), Alias::new("url"))), "url")
        .expr_as(Expr::col((Alias::new("e"), Alias::new("secret"))), "secret")
        .expr_as(
            Expr::col((Alias::new("d"), Alias::new("template"))),
            "template",
        )
        .expr_as(
            Expr::col((Alias::new("d"), Alias::new("to_email"))),
            "to_email",
        )
        .expr_as(
            Expr::col((Alias::new("d"), Alias::new("to_name"))),
            "to_name",
        )
        .from_as(WEBHOOK_MESSAGES, Alias::new("m"))
        .join_as(
            JoinType::InnerJoin,
            WEBHOOK_ENDPOINTS,
            Alias::new("e"),
            Expr::col((Alias::new("e"), Alias::new("id")))
                .equals((Alias::new("m"), Alias::new("endpoint_id"))),
        )
        .join_as(
            JoinType::InnerJoin,
            DELIVERIES,
            Alias::new("d"),
            Expr::col((Alias::new("d"), Alias::new("id")))
                .equals((Alias::new("m"), Alias::new("mail_id"))),
        )
        .to_owned()
}

fn due_from_row(row: &QueryResult) -> Result<DueMessage, MailError> {
    let corrupt = |e: String| MailError::Corrupt(e);
    Ok(DueMessage {
        id: row.try_get("", "id")?,
        endpoint_id: row.try_get("", "endpoint_id")?,
        url: row.try_get("", "url")?,
        secret: row.try_get("", "secret")?,
        mail_id: parse_id(&row.try_get::<String>("", "mail_id")?)?,
        cursor: row.try_get("", "cursor")?,
        status: DeliveryStatus::from_db(&row.try_get::<String>("", "status")?)?,
        attempts: parse_attempts(row.try_get::<i32>("", "attempts")?.into())?,
        error: row.try_get("", "error")?,
        at: from_millis(row.try_get("", "at")?)?,
        tries: parse_attempts(row.try_get::<i32>("", "tries")?.into())?,
        template: Template::parse(&row.try_get::<String>("", "template")?)
            .map_err(|e| corrupt(e.to_string()))?,
        to: Recipient {
            email: Email::parse(row.try_get::<String>("", "to_email")?)
                .map_err(|e| corrupt(e.to_string()))?,
            name: row.try_get("", "to_name")?,
        },
    })
}

/// Up to `limit` messages due at `now` that no mailer holds, of enabled endpoints, each the
/// first still pending of its mail for its endpoint (so a mail's events arrive in order),
/// oldest due first.
pub(crate) async fn due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueMessage>, MailError> {
    let now = to_millis(now);
    let earlier = Query::select()
        .expr(Expr::val(1))
        .from_as(WEBHOOK_MESSAGES, Alias::new("p"))
        .and_where(
            Expr::col((Alias::new("p"), Alias::new("mail_id")))
                .equals((Alias::new("m"), Alias::new("mail_id"))),
        )
        .and_where(
            Expr::col((Alias::new("p"), Alias::new("endpoint_id")))
                .equals((Alias::new("m"), Alias::new("endpoint_id"))),
        )
        .and_where(Expr::col((Alias::new("p"), Alias::new("cursor"))).lt(m("cursor")))
        .and_where(Expr::col((Alias::new("p"), Alias::new("state"))).eq("pending"))
        .to_owned();
    let q = due_select()
        .and_where(m("state").eq("pending"))
        .and_where(m("next_at").lte(now))
        .and_where(m("locked_until").is_null().or(m("locked_until").lte(now)))
        .and_where(Expr::col((Alias::new("e"), Alias::new("enabled"))).eq(1))
        .and_where(Expr::exists(earlier).not())
        .order_by((Alias::new("m"), Alias::new("next_at")), Order::Asc)
        .limit(limit)
        .to_owned();
    db.query_all(&q).await?.iter().map(due_from_row).collect()
}

/// The message of attempt `attempt_id` of endpoint `endpoint_id`, whatever its state, to
/// send once more.
pub(crate) async fn message_of_attempt(
    db: &DatabaseConnection,
    endpoint_id: &str,
    attempt_id: &str,
) -> Result<Option<DueMessage>, MailError> {
    let of_attempt = Query::select()
        .column("message_id")
        .from(WEBHOOK_ATTEMPTS)
        .and_where(Expr::col("id").eq(attempt_id))
        .and_where(Expr::col("endpoint_id").eq(endpoint_id))
        .to_owned();
    let q = due_select()
        .and_where(m("id").in_subquery(of_attempt))
        .to_owned();
    db.query_one(&q)
        .await?
        .map(|row| due_from_row(&row))
        .transpose()
}

/// One page of the attempts of endpoint `endpoint_id`, newest first.
pub(crate) async fn attempts(
    db: &DatabaseConnection,
    endpoint_id: &str,
    page: u64,
    per_page: u64,
) -> Result<AttemptPage, MailError> {
    let total = count(
        db,
        Query::select()
            .from(WEBHOOK_ATTEMPTS)
            .and_where(Expr::col("endpoint_id").eq(endpoint_id))
            .to_owned(),
    )
    .await?;
    let q = Query::select()
        .columns([
            "id",
            "message_id",
            "mail_id",
            "event_type",
            "at",
            "status_code",
            "duration_ms",
            "error",
        ])
        .from(WEBHOOK_ATTEMPTS)
        .and_where(Expr::col("endpoint_id").eq(endpoint_id))
        .order_by("at", Order::Desc)
        .order_by("id", Order::Desc)
        .limit(per_page)
        .offset(page.saturating_sub(1).saturating_mul(per_page))
        .to_owned();
    let mut items = Vec::new();
    for row in db.query_all(&q).await? {
        let status_code: Option<i32> = row.try_get("", "status_code")?;
        let duration_ms: i64 = row.try_get("", "duration_ms")?;
        items.push(WebhookAttempt {
            id: row.try_get("", "id")?,
            message_id: row.try_get("", "message_id")?,
            mail_id: parse_id(&row.try_get::<String>("", "mail_id")?)?,
            event_type: row.try_get("", "event_type")?,
            at: from_millis(row.try_get("", "at")?)?,
            status_code: status_code.and_then(|c| u16::try_from(c).ok()),
            duration_ms: u64::try_from(duration_ms).unwrap_or(0),
            error: row.try_get("", "error")?,
        });
    }
    Ok(AttemptPage {
        items,
        total,
        page,
        per_page,
    })
}
