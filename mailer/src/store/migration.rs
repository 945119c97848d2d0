//! The schema of the delivery store.
//!
//! Times are stored as milliseconds since the Unix epoch (`BIGINT`), which sorts and
//! compares the same way on SQLite and PostgreSQL.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, integer_null, string, string_null, text, text_null,
};
use std::collections::HashSet;

/// Applies every migration of the mailer in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateDeliveries),
            Box::new(IndexDueDeliveries),
            Box::new(CreateSuppressions),
            Box::new(AddDeliveryColumns),
            Box::new(AddSuppressionKey),
            Box::new(add_erase_recipient()),
            Box::new(KeySuppressionsByHash),
            Box::new(add_requested_at()),
            Box::new(CreateWebhooks),
            Box::new(CreateReports),
        ]
    }
}

/// The table name, shared with the queries.
pub const DELIVERIES: &str = "mail_deliveries";
/// The suppression list: addresses the mailer will not send to.
pub const SUPPRESSIONS: &str = "mail_suppressions";
/// Values the store keeps about itself, by name (the suppression key's check value).
pub const SETTINGS: &str = "mail_settings";
/// The index over unfinished deliveries by the time of their next try, which the
/// dispatcher pages through (named by the SQLite query that must ask for it).
pub const DUE_INDEX: &str = "mail_deliveries_due";
/// On PostgreSQL, the next change's cursor (see [`AddDeliveryColumns`]).
pub const NEXT_CURSOR: &str = "nextval('mail_cursor_seq')";
/// On PostgreSQL, a condition that takes the cursor lock (see [`AddDeliveryColumns`]): an
/// uncorrelated subquery, which PostgreSQL runs once, before the statement's first row.
pub const CURSOR_LOCK_FILTER: &str = "EXISTS (SELECT pg_advisory_xact_lock(4242702601))";
/// On PostgreSQL, [`NEXT_CURSOR`] taking the cursor lock first, for an insert's first row
/// (the rows of `VALUES` are computed in their order).
pub const LOCKED_NEXT_CURSOR: &str = "(SELECT nextval('mail_cursor_seq') \
     FROM (SELECT pg_advisory_xact_lock(4242702601)) AS cursor_lock)";
/// Webhook endpoints: where status changes are POSTed.
pub const WEBHOOK_ENDPOINTS: &str = "mail_webhook_endpoints";
/// The webhook outbox: one row per status change and endpoint that wants it.
pub const WEBHOOK_MESSAGES: &str = "mail_webhook_messages";
/// Every attempt to deliver a webhook message.
pub const WEBHOOK_ATTEMPTS: &str = "mail_webhook_attempts";
/// The index over the webhook messages still to deliver, by the time of their next try.
pub const WEBHOOK_DUE_INDEX: &str = "mail_webhook_messages_due";
/// The index that keeps a mail's messages to one endpoint in order.
pub const WEBHOOK_MAIL_INDEX: &str = "mail_webhook_messages_mail";
/// Reports sent back about delivered mails (bounces, delays, complaints): each delivery's
/// history after its handoff.
pub const REPORTS: &str = "mail_delivery_reports";
/// The index it replaced.
const STATUS_NEXT_INDEX: &str = "mail_deliveries_status_next";

struct CreateDeliveries;

impl MigrationName for CreateDeliveries {
    fn name(&self) -> &str {
        "m20261127_000001_create_mail_deliveries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDeliveries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DELIVERIES)
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("template"))
                    .col(string("locale"))
                    .col(string("to_email"))
                    .col(string("to_name"))
                    .col(text("vars"))
                    .col(string("status"))
                    .col(integer("attempts"))
                    .col(text_null("last_error"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("sent_at"))
                    .col(big_integer("next_attempt_at"))
                    .to_owned(),
            )
            .await?;
        // GET /mails lists newest first, optionally by status; the restart scan reads by status.
        manager
            .create_index(
                Index::create()
                    .name("mail_deliveries_status_created")
                    .table(DELIVERIES)
                    .col("status")
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The dispatcher pages through due work by status and time of the next try
        // (replaced by a partial index: `IndexDueDeliveries`).
        manager.create_index(status_next_index()).await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_deliveries_created")
                    .table(DELIVERIES)
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}

/// `(status, next_attempt_at)`: made by the first migration, replaced by the second.
fn status_next_index() -> IndexCreateStatement {
    Index::create()
        .name(STATUS_NEXT_INDEX)
        .table(DELIVERIES)
        .col("status")
        .col("next_attempt_at")
        .if_not_exists()
        .to_owned()
}

fn drop_index(name: &str) -> IndexDropStatement {
    Index::drop()
        .name(name)
        .table(DELIVERIES)
        .if_exists()
        .to_owned()
}

/// Replaces the `(status, next_attempt_at)` index with one over `next_attempt_at` that holds
/// only the deliveries still to be tried (`queued`, `retrying`).
///
/// - Paging through due work reads one page: the old index kept `queued` and `retrying` apart,
///   so each page of `ORDER BY next_attempt_at LIMIT n` read every due row of both and
///   sorted them, which under a backlog of 200,000 requests is 200,000 rows per page of 512.
/// - A delivery leaves this index when it is claimed and does not come back once sent, where
///   the old index moved its entry at the claim and again at the outcome: fewer B-tree
///   writes per mail, and fewer pages per commit.
struct IndexDueDeliveries;

impl MigrationName for IndexDueDeliveries {
    fn name(&self) -> &str {
        "m20261128_000001_index_due_deliveries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexDueDeliveries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(DUE_INDEX)
                    .table(DELIVERIES)
                    .col("next_attempt_at")
                    .and_where(Expr::col("status").is_in(["queued", "retrying"]))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager.drop_index(drop_index(STATUS_NEXT_INDEX)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(status_next_index()).await?;
        manager.drop_index(drop_index(DUE_INDEX)).await
    }
}

/// The suppression list, one row per address (looked up by the key [`AddSuppressionKey`]
/// adds), newest first in `GET /suppressions`. Nothing in `mail_deliveries` changes: the new
/// statuses are new values of its `status` text.
struct CreateSuppressions;

impl MigrationName for CreateSuppressions {
    fn name(&self) -> &str {
        "m20261201_000001_create_mail_suppressions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSuppressions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SUPPRESSIONS)
                    .if_not_exists()
                    .col(string("email").primary_key())
                    .col(text("reason"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_suppressions_created")
                    .table(SUPPRESSIONS)
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SUPPRESSIONS).if_exists().to_owned())
            .await
    }
}

/// `cursor`: the store-wide order of changes (`mail-activity`'s `cursor`, `/live`'s
/// `catch-up`), set by every write that changes a delivery's public status, in that write.
/// `sender`: the socket id of the service client that sent the request, so the mailer that
/// delivers it, which may not be the one that took it, can address its `mail-status`.
/// `traceparent`: the accepting span's trace context, which each delivery attempt continues
/// (retries are read back from the store); none for untraced requests and older rows.
///
/// On PostgreSQL a cursor comes from a sequence ([`NEXT_CURSOR`]), taken while the statement
/// holds a transaction-level advisory lock, released by its commit ([`CURSOR_LOCK_FILTER`],
/// [`LOCKED_NEXT_CURSOR`]), so cursors are committed in their order and a reader that has
/// seen cursor N never sees a smaller one appear later (with the bare sequence, a slower
/// transaction could commit a smaller number after a reader moved past it). The lock is
/// taken once per statement, by the writes that number changes; claims, which change
/// nothing the outside sees, never take it. SQLite has one writer, which numbers
/// changes itself (`store::sqlite_file`, `store::pool_writer`).
struct AddDeliveryColumns;

impl MigrationName for AddDeliveryColumns {
    fn name(&self) -> &str {
        "m20261201_000002_add_cursor_sender_traceparent"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDeliveryColumns {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null("cursor"),
            text_null("sender"),
            text_null("traceparent"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DELIVERIES)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared(
                "CREATE SEQUENCE IF NOT EXISTS mail_cursor_seq;
                 UPDATE mail_deliveries d SET cursor = n.n FROM (
                     SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM mail_deliveries
                 ) n WHERE d.id = n.id;
                 SELECT setval('mail_cursor_seq', coalesce((SELECT max(cursor) FROM mail_deliveries), 0) + 1, false);",
            )
            .await?;
        } else {
            // Rows written before cursors existed, in the order they were stored.
            db.execute_unprepared("UPDATE mail_deliveries SET cursor = rowid")
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("mail_deliveries_cursor")
                    .table(DELIVERIES)
                    .col("cursor")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(drop_index("mail_deliveries_cursor"))
            .await?;
        for column in ["cursor", "sender", "traceparent"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DELIVERIES)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// A migration that adds one column to `mail_deliveries` (and drops it on the way down).
struct AddDeliveryColumn {
    migration: &'static str,
    column: &'static str,
    /// The column's definition, given its name.
    definition: fn(&'static str) -> ColumnDef,
}

impl MigrationName for AddDeliveryColumn {
    fn name(&self) -> &str {
        self.migration
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDeliveryColumn {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DELIVERIES)
                    .add_column((self.definition)(self.column))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DELIVERIES)
                    .drop_column(self.column)
                    .to_owned(),
            )
            .await
    }
}

/// `mail_deliveries.erase_recipient`: 1 when the request asked for its recipient's records to
/// be erased once it is delivered (a deleted account's last mail); 0 for every row before it.
fn add_erase_recipient() -> AddDeliveryColumn {
    AddDeliveryColumn {
        migration: "m20261207_000001_add_erase_recipient",
        column: "erase_recipient",
        definition: |name| integer(name).default(0).to_owned(),
    }
}

/// `mail_deliveries.requested_at`: the request's own `requested_at`, in milliseconds. An
/// erasure after a deleted account's last mail takes the records requested before that mail:
/// the order in which the requests were made, which the store's order is not (several
/// consumers, several mailers). Null for every row before it, which then counts as requested
/// when it was stored.
fn add_requested_at() -> AddDeliveryColumn {
    AddDeliveryColumn {
        migration: "m20261207_000002_add_requested_at",
        column: "requested_at",
        definition: big_integer_null,
    }
}

/// The unique index on `mail_suppressions.email_key`.
const SUPPRESSION_KEY_INDEX: &str = "mail_suppressions_email_key";

/// `mail_suppressions.email_key`: the canonical key of each address
/// (`domain::Email::canonical`), unique, so that every spelling of an address
/// (`Ada@Bücher.de`, `ada@xn--bcher-kva.de`) is one entry, found by every look-up; `email`
/// keeps the address as it was added, which `GET /suppressions` shows.
///
/// The keys of existing rows are computed here, in Rust: the UTS-46 mapping and the
/// normalisation have no SQL equivalent. Rows that are one address under the new key (the
/// old key kept the local part's case) are merged into the oldest, as adding an address
/// listed already keeps its first entry.
struct AddSuppressionKey;

impl MigrationName for AddSuppressionKey {
    fn name(&self) -> &str {
        "m20261206_000001_add_suppression_email_key"
    }
}

/// The canonical key of a listed address; one that no longer parses keys as its lower case.
fn listed_key(email: &str) -> String {
    match domain::Email::parse(email) {
        Ok(parsed) => parsed.canonical().to_owned(),
        Err(_) => email.to_lowercase(),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSuppressionKey {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let select = Query::select()
            .column("email")
            .from(SUPPRESSIONS)
            .order_by("created_at", Order::Asc)
            .order_by("email", Order::Asc)
            .to_owned();
        let mut listed = Vec::new();
        for row in db.query_all(&select).await? {
            let email: String = row.try_get("", "email")?;
            let key = listed_key(&email);
            listed.push((email, key));
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SUPPRESSIONS)
                    .add_column(string("email_key").default(""))
                    .to_owned(),
            )
            .await?;
        let mut kept = HashSet::new();
        for (email, key) in listed {
            if kept.insert(key.clone()) {
                let keyed = Query::update()
                    .table(SUPPRESSIONS)
                    .value("email_key", key)
                    .and_where(Expr::col("email").eq(email))
                    .to_owned();
                db.execute(&keyed).await?;
            } else {
                let merged = Query::delete()
                    .from_table(SUPPRESSIONS)
                    .and_where(Expr::col("email").eq(email))
                    .to_owned();
                db.execute(&merged).await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name(SUPPRESSION_KEY_INDEX)
                    .table(SUPPRESSIONS)
                    .col("email_key")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(SUPPRESSION_KEY_INDEX)
                    .table(SUPPRESSIONS)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SUPPRESSIONS)
                    .drop_column("email_key")
                    .to_owned(),
            )
            .await
    }
}

/// The suppression list keyed by its lookup key alone: `email_key` becomes the primary key
/// (it holds the keyed hash of the canonical address, computed at start where the key is
/// known: `store::suppression_key`), and `email` may be null, for an entry whose address was
/// erased. Every engine needs a new table to change a primary key: the rows are copied over
/// and the old table dropped. `mail_settings` keeps the key's check value.
struct KeySuppressionsByHash;

/// The list's table while it is rebuilt.
const REKEYED: &str = "mail_suppressions_rekeyed";

impl MigrationName for KeySuppressionsByHash {
    fn name(&self) -> &str {
        "m20261210_000001_key_suppressions_by_hash"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KeySuppressionsByHash {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(REKEYED)
                    .col(string("email_key").primary_key())
                    .col(string_null("email"))
                    .col(text("reason"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO mail_suppressions_rekeyed (email_key, email, reason, created_at) \
                 SELECT email_key, email, reason, created_at FROM mail_suppressions",
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SUPPRESSIONS).to_owned())
            .await?;
        manager
            .rename_table(Table::rename().table(REKEYED, SUPPRESSIONS).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_suppressions_created")
                    .table(SUPPRESSIONS)
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SETTINGS)
                    .if_not_exists()
                    .col(string("name").primary_key())
                    .col(text("value"))
                    .to_owned(),
            )
            .await
    }
}

/// Webhooks: the endpoints, the outbox of events ("messages", one per status change and
/// endpoint) and the attempts to deliver them.
///
/// The messages are written by triggers on `mail_deliveries`, in the statement that changes
/// the delivery, so in its commit whichever write path made it (an insert, an outcome, a
/// retry, a cancel): a mailer that stops after the commit still has every event to send.
/// They fire on a new row and on a new `cursor`, which every write that changes what the
/// outside sees sets, and only for the enabled endpoints that want the status. They exist
/// only while an endpoint does ([`outbox_triggers`], made and dropped with the endpoints, in
/// the same transaction): a trigger on every insert and outcome costs SQLite about a quarter
/// more instructions per mail (it keeps each old row and updates in two passes), which a
/// mailer without webhooks should not pay. A message
/// holds what changed (status, tries, error, cursor, time); what never changes (template,
/// recipient) is read from the delivery when it is sent. Deleting a delivery (retention,
/// erasure) deletes its messages and attempts, by trigger too.
struct CreateWebhooks;

impl MigrationName for CreateWebhooks {
    fn name(&self) -> &str {
        "m20261212_000001_create_webhooks"
    }
}

/// The stored time of now, in milliseconds since the epoch, for each engine's triggers.
const SQLITE_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
const POSTGRES_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The triggers that write the webhook outbox, for `backend`: made with the first endpoint
/// and dropped with the last (see [`CreateWebhooks`]).
pub(crate) fn outbox_triggers(backend: sea_orm::DbBackend) -> String {
    if backend == sea_orm::DbBackend::Postgres {
        // The function is made by the migration.
        format!(
            "DROP TRIGGER IF EXISTS mail_webhook_on_insert ON {DELIVERIES};
             DROP TRIGGER IF EXISTS mail_webhook_on_change ON {DELIVERIES};
             CREATE TRIGGER mail_webhook_on_insert AFTER INSERT ON {DELIVERIES} \
             FOR EACH ROW EXECUTE FUNCTION mail_webhook_outbox();
             CREATE TRIGGER mail_webhook_on_change AFTER UPDATE OF cursor ON {DELIVERIES} \
             FOR EACH ROW WHEN (NEW.cursor IS DISTINCT FROM OLD.cursor) \
             EXECUTE FUNCTION mail_webhook_outbox();"
        )
    } else {
        let insert = webhook_outbox_insert(
            "'msg_' || lower(hex(randomblob(16)))",
            SQLITE_NOW_MS,
            "instr(e.events, ',' || NEW.status || ',') > 0",
        );
        format!(
            "CREATE TRIGGER IF NOT EXISTS mail_webhook_on_insert AFTER INSERT ON {DELIVERIES} \
             BEGIN {insert}; END;
             CREATE TRIGGER IF NOT EXISTS mail_webhook_on_change AFTER UPDATE OF cursor ON {DELIVERIES} \
             WHEN NEW.cursor IS NOT OLD.cursor BEGIN {insert}; END;"
        )
    }
}

/// Drops the triggers of [`outbox_triggers`].
pub(crate) fn drop_outbox_triggers(backend: sea_orm::DbBackend) -> String {
    let on = if backend == sea_orm::DbBackend::Postgres {
        format!(" ON {DELIVERIES}")
    } else {
        String::new()
    };
    format!(
        "DROP TRIGGER IF EXISTS mail_webhook_on_insert{on}; \
         DROP TRIGGER IF EXISTS mail_webhook_on_change{on};"
    )
}

/// The insert both engines' triggers make for the row `NEW`.
fn webhook_outbox_insert(message_id: &str, now: &str, events_match: &str) -> String {
    format!(
        "INSERT INTO {WEBHOOK_MESSAGES} \
         (id, endpoint_id, mail_id, cursor, status, attempts, error, at, state, tries, next_at) \
         SELECT {message_id}, e.id, NEW.id, NEW.cursor, NEW.status, NEW.attempts, NEW.last_error, \
         {now}, 'pending', 0, {now} \
         FROM {WEBHOOK_ENDPOINTS} e WHERE e.enabled = 1 AND (e.events IS NULL OR {events_match})"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WEBHOOK_ENDPOINTS)
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(text("url"))
                    // `,sent,failed,`; null for every status.
                    .col(text_null("events"))
                    .col(text_null("description"))
                    .col(text("secret"))
                    .col(integer("enabled"))
                    .col(big_integer("created_at"))
                    // Since when every attempt failed; null after a success.
                    .col(big_integer_null("failing_since"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WEBHOOK_MESSAGES)
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("endpoint_id"))
                    .col(string("mail_id"))
                    .col(big_integer("cursor"))
                    .col(string("status"))
                    .col(integer("attempts"))
                    .col(text_null("error"))
                    .col(big_integer("at"))
                    // `pending`, `delivered` or `failed`.
                    .col(string("state"))
                    .col(integer("tries"))
                    .col(big_integer("next_at"))
                    // Taken by a mailer until then (several mailers share the outbox).
                    .col(big_integer_null("locked_until"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(WEBHOOK_DUE_INDEX)
                    .table(WEBHOOK_MESSAGES)
                    .col("next_at")
                    .and_where(Expr::col("state").eq("pending"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(WEBHOOK_MAIL_INDEX)
                    .table(WEBHOOK_MESSAGES)
                    .col("mail_id")
                    .col("endpoint_id")
                    .col("cursor")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_webhook_messages_endpoint")
                    .table(WEBHOOK_MESSAGES)
                    .col("endpoint_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WEBHOOK_ATTEMPTS)
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("endpoint_id"))
                    .col(string("message_id"))
                    .col(string("mail_id"))
                    .col(string("event_type"))
                    .col(big_integer("at"))
                    .col(integer_null("status_code"))
                    .col(big_integer("duration_ms"))
                    .col(text_null("error"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("mail_webhook_attempts_endpoint", &["endpoint_id", "at"][..]),
            ("mail_webhook_attempts_mail", &["mail_id"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(WEBHOOK_ATTEMPTS).if_not_exists();
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        let forget = format!(
            "DELETE FROM {WEBHOOK_MESSAGES} WHERE mail_id = OLD.id; \
             DELETE FROM {WEBHOOK_ATTEMPTS} WHERE mail_id = OLD.id;"
        );
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            let insert = webhook_outbox_insert(
                "'msg_' || replace(gen_random_uuid()::text, '-', '')",
                POSTGRES_NOW_MS,
                "position(',' || NEW.status || ',' in e.events) > 0",
            );
            db.execute_unprepared(&format!(
                "CREATE OR REPLACE FUNCTION mail_webhook_outbox() RETURNS trigger AS $$ \
                 BEGIN {insert}; RETURN NULL; END $$ LANGUAGE plpgsql;
                 CREATE OR REPLACE FUNCTION mail_webhook_forget() RETURNS trigger AS $$ \
                 BEGIN {forget} RETURN NULL; END $$ LANGUAGE plpgsql;
                 DROP TRIGGER IF EXISTS mail_webhook_on_delete ON {DELIVERIES};
                 CREATE TRIGGER mail_webhook_on_delete AFTER DELETE ON {DELIVERIES} \
                 FOR EACH ROW EXECUTE FUNCTION mail_webhook_forget();"
            ))
            .await?;
        } else {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER IF NOT EXISTS mail_webhook_on_delete AFTER DELETE ON {DELIVERIES} \
                 BEGIN {forget} END;"
            ))
            .await?;
        }
        Ok(())
    }
}

/// `mail_delivery_reports`: every report a delivery received after its handoff (a bounce, a
/// delay, a complaint), newest last, shown with `GET /mails/{id}`. Deleted with the delivery,
/// by trigger, as its webhook events are.
struct CreateReports;

impl MigrationName for CreateReports {
    fn name(&self) -> &str {
        "m20261212_000002_create_delivery_reports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateReports {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(REPORTS)
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("mail_id"))
                    .col(big_integer("at"))
                    // `bounce`, `delay` or `complaint`.
                    .col(string("kind"))
                    // The DSN's status (`5.1.1`) or the complaint's feedback type.
                    .col(string("status"))
                    .col(text_null("diagnostic"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mail_delivery_reports_mail")
                    .table(REPORTS)
                    .col("mail_id")
                    .col("at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        let forget = format!("DELETE FROM {REPORTS} WHERE mail_id = OLD.id;");
        let db = manager.get_connection();
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared(&format!(
                "CREATE OR REPLACE FUNCTION mail_reports_forget() RETURNS trigger AS $$ \
                 BEGIN {forget} RETURN NULL; END $$ LANGUAGE plpgsql;
                 DROP TRIGGER IF EXISTS mail_reports_on_delete ON {DELIVERIES};
                 CREATE TRIGGER mail_reports_on_delete AFTER DELETE ON {DELIVERIES} \
                 FOR EACH ROW EXECUTE FUNCTION mail_reports_forget();"
            ))
            .await?;
        } else {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER IF NOT EXISTS mail_reports_on_delete AFTER DELETE ON {DELIVERIES} \
                 BEGIN {forget} END;"
            ))
            .await?;
        }
        Ok(())
    }
}
