//! The `users` table: one row per account, with the Argon2id PHC string of its password.

use sea_orm::entity::prelude::*;

/// One account.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The account's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique, 3–32 of `[a-z0-9._-]`.
    pub login: String,
    /// The address as the user wrote it (composed to NFC): what answers show and mails go to.
    pub email: String,
    /// The address's canonical key (`domain::Email::canonical`), unique: one account per
    /// address, however it is spelt. Look-ups by address use it.
    pub email_key: String,
    /// The Argon2id PHC string; never leaves the service.
    pub password_hash: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Optional company.
    pub company: Option<String>,
    /// A JSON array of strings.
    pub functions: Json,
    /// `fr` or `en`: the language of the user's mails.
    pub locale: String,
    /// When the account was created.
    pub created_at: DateTimeUtc,
    /// When the account last changed.
    pub updated_at: DateTimeUtc,
    /// When the owner proved the current address (a mailed link); `None` until then, and
    /// again after the address changes.
    pub email_verified_at: Option<DateTimeUtc>,
}

/// The current time at the precision both databases keep (PostgreSQL stores microseconds),
/// so that an answer shows the same time a later read returns.
pub(crate) fn now() -> DateTimeUtc {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// The table has no relation the service navigates through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
