//! The schema, as sea-orm migrations run at every start. The same statements build the same
//! tables on SQLite and PostgreSQL.
//!
//! Unique logins and emails are enforced by named unique indexes, so two concurrent creates
//! cannot both succeed, and the index names let the service tell which field collided.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// The unique index on `users.login`.
pub(crate) const LOGIN_INDEX: &str = "users_login_key";
/// The unique index on `users.email`.
pub(crate) const EMAIL_INDEX: &str = "users_email_key";

/// Every migration of the users database, in order.
pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(AddOutboxTraceparent),
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

/// Sessions as records: one row per session token, holding a keyed hash of the token's
/// secret part, never the token. Ending a session deletes its row; the rows of a deleted
/// user go with it.
struct CreateSessions;

impl MigrationName for CreateSessions {
    fn name(&self) -> &str {
        "m0003_create_sessions"
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
