//! The schema, as sea-orm migrations run at every start. The same statements build the same
//! tables on SQLite and PostgreSQL.
//!
//! Unique logins and addresses are enforced by named unique indexes, so two concurrent
//! creates cannot both succeed, and the index names let the service tell which field
//! collided. An address is unique by its canonical key (`users.email_key`), not as written.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use std::collections::HashMap;

/// The unique index on `users.login`.
pub(crate) const LOGIN_INDEX: &str = "users_login_key";
/// The unique index that was on `users.email`, until [`AddEmailKey`] replaced it.
const EMAIL_INDEX: &str = "users_email_key";
/// The unique index on `users.email_key`, the canonical key of the address.
pub(crate) const EMAIL_KEY_INDEX: &str = "users_email_key_unique";

/// Every migration of the users database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(AddOutboxTraceparent),
            Box::new(AddEmailKey),
            Box::new(AddEmailVerification),
            Box::new(CreateSessions),
        ]
    }
}

/// Users, their reset tokens and the outbox.
struct CreateTables;

impl MigrationName for CreateTables {
    fn name(&self) -> &str {
        "m0001_create_users_outbox_password_resets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(string("login"))
                    .col(string("email"))
                    .col(text("password_hash"))
                    .col(string("first_name"))
                    .col(string("last_name"))
                    .col(string_null("company"))
                    .col(json("functions"))
                    .col(string_len("locale", 8))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [(LOGIN_INDEX, "login"), (EMAIL_INDEX, "email")] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("users")
                        .col(column)
                        .unique()
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("users_created_at_idx")
                    .table("users")
                    .col("created_at")
                    .col("id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("password_resets")
                    .if_not_exists()
                    .col(string("token_hash").primary_key())
                    .col(uuid("user_id"))
                    .col(big_integer("created_at_ms"))
                    .col(big_integer("expires_at_ms"))
                    .col(big_integer_null("used_at_ms"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("password_resets_user_fk")
                            .from("password_resets", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("payload"))
                    .col(big_integer("created_at_ms"))
                    .col(big_integer("next_attempt_at_ms"))
                    .col(big_integer_null("claimed_until_ms"))
                    .col(integer("attempts").default(0))
                    .col(text_null("last_error"))
                    .col(big_integer_null("published_at_ms"))
                    .to_owned(),
            )
            .await?;
        // The relay's claim query and the backlog gauge both read pending rows by due time.
        manager
            .create_index(
                Index::create()
                    .name("outbox_pending_idx")
                    .table("outbox")
                    .col("published_at_ms")
                    .col("next_attempt_at_ms")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["outbox", "password_resets", "users"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The trace context of the transaction that wrote an outbox row, so the relay's publish
/// continues the trace of the request that asked for the mail. Nullable: rows written
/// before it, and by a process that does not trace, have none.
struct AddOutboxTraceparent;

impl MigrationName for AddOutboxTraceparent {
    fn name(&self) -> &str {
        "m0002_add_outbox_traceparent"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddOutboxTraceparent {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .add_column(text_null("traceparent"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .drop_column("traceparent")
                    .to_owned(),
            )
            .await
    }
}

/// `users.email_key`: the canonical key of each address (`domain::Email::canonical`), under
/// a unique index that replaces the one on `users.email`, so that `Ada@Example.org` and
/// `ada@ｅｘａｍｐｌｅ.org` cannot be two accounts. The key of existing rows is computed here,
/// in Rust: the UTS-46 mapping and the normalisation have no SQL equivalent on either
/// database.
///
/// When two existing accounts share a key the migration stops before changing anything,
/// naming both: which one keeps the address is the operator's decision, not the schema's.
struct AddEmailKey;

impl MigrationName for AddEmailKey {
    fn name(&self) -> &str {
        "m0003_add_users_email_key"
    }
}

/// One account as the migration reads it.
struct Account {
    id: uuid::Uuid,
    login: String,
    key: String,
}

/// The canonical key of a stored address. An address stored before the rules of
/// `domain::Email` tightened, which no longer parses, keys as its lower case: the account
/// keeps working and stays unique.
fn stored_key(email: &str) -> String {
    match domain::Email::parse(email) {
        Ok(parsed) => parsed.canonical().to_owned(),
        Err(_) => email.to_lowercase(),
    }
}

async fn accounts(db: &impl ConnectionTrait) -> Result<Vec<Account>, DbErr> {
    let select = Query::select()
        .columns(["id", "login", "email"])
        .from("users")
        .order_by("created_at", Order::Asc)
        .order_by("id", Order::Asc)
        .to_owned();
    let mut accounts = Vec::new();
    for row in db.query_all(&select).await? {
        let email: String = row.try_get("", "email")?;
        accounts.push(Account {
            id: row.try_get("", "id")?,
            login: row.try_get("", "login")?,
            key: stored_key(&email),
        });
    }
    Ok(accounts)
}

/// An error naming the first two accounts of `accounts` that share a key, if any.
fn first_collision(accounts: &[Account]) -> Option<DbErr> {
    let mut seen: HashMap<&str, &Account> = HashMap::with_capacity(accounts.len());
    for account in accounts {
        if let Some(first) = seen.insert(&account.key, account) {
            return Some(DbErr::Migration(format!(
                "accounts {} (login {}) and {} (login {}) have the same email address once \
                 compared in its canonical form ({}); change or delete one of them, then start \
                 again",
                first.id, first.login, account.id, account.login, account.key
            )));
        }
    }
    None
}

#[async_trait::async_trait]
impl MigrationTrait for AddEmailKey {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let accounts = accounts(db).await?;
        if let Some(collision) = first_collision(&accounts) {
            return Err(collision);
        }
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(string("email_key").default(""))
                    .to_owned(),
            )
            .await?;
        for account in &accounts {
            let update = Query::update()
                .table("users")
                .value("email_key", account.key.clone())
                .and_where(Expr::col("id").eq(account.id))
                .to_owned();
            db.execute(&update).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(EMAIL_KEY_INDEX)
                    .table("users")
                    .col("email_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(EMAIL_INDEX).table("users").to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(EMAIL_INDEX)
                    .table("users")
                    .col("email")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(EMAIL_KEY_INDEX)
                    .table("users")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("email_key")
                    .to_owned(),
            )
            .await
    }
}

/// Proved addresses: when the owner proved the current address (null: not proved; accounts
/// made before this migration start unproved), and the tokens of the links that prove one.
struct AddEmailVerification;

impl MigrationName for AddEmailVerification {
    fn name(&self) -> &str {
        "m0004_add_email_verification"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddEmailVerification {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(timestamp_with_time_zone_null("email_verified_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("email_verifications")
                    .if_not_exists()
                    .col(string("token_hash").primary_key())
                    .col(uuid("user_id"))
                    .col(string("email"))
                    .col(big_integer("created_at_ms"))
                    .col(big_integer("expires_at_ms"))
                    .col(big_integer_null("used_at_ms"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("email_verifications_user_fk")
                            .from("email_verifications", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A change of address deletes the user's pending tokens by user.
        manager
            .create_index(
                Index::create()
                    .name("email_verifications_user_idx")
                    .table("email_verifications")
                    .col("user_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("email_verifications")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("email_verified_at")
                    .to_owned(),
            )
            .await
    }
}

/// Sessions as records: one row per session token, holding a keyed hash of the token's
/// secret part, never the token. Ending a session deletes its row; the rows of a deleted
/// user go with it.
struct CreateSessions;

impl MigrationName for CreateSessions {
    fn name(&self) -> &str {
        "m0005_create_sessions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSessions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(uuid("user_id"))
                    .col(string("secret_hash"))
                    .col(big_integer("created_at_ms"))
                    .col(big_integer("last_used_at_ms"))
                    .col(big_integer("expires_at_ms"))
                    .col(string_null("client"))
                    .col(string_null("user_agent"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("sessions_user_fk")
                            .from("sessions", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's list and "end every session of this user"; the purge of expired rows.
        for (name, column) in [
            ("sessions_user_idx", "user_id"),
            ("sessions_expires_idx", "expires_at_ms"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("sessions")
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sessions").if_exists().to_owned())
            .await
    }
}
