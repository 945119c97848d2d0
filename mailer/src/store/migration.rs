//! The schema of the delivery store.
//!
//! Times are stored as milliseconds since the Unix epoch (`BIGINT`), which sorts and
//! compares the same way on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, integer, string, text, text_null};

/// Applies every migration of the mailer in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateDeliveries)]
    }
}

/// The table name, shared with the queries.
pub const DELIVERIES: &str = "mail_deliveries";

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
        // The dispatcher pages through due work by status and time of the next try.
        manager
            .create_index(
                Index::create()
                    .name("mail_deliveries_status_next")
                    .table(DELIVERIES)
                    .col("status")
                    .col("next_attempt_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
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
