//! The mail requests the users service asks for, one builder per template.
//!
//! Each request gets a fresh UUIDv7 id (its idempotency key, also the outbox row's key) and
//! goes to the user's address, in the user's language.

use crate::entities::user;
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{Email, Locale, MailRequest, Recipient, Template};
use serde_json::{Map, Value, json};

fn recipient(user: &user::Model) -> anyhow::Result<Recipient> {
    Ok(Recipient {
        email: Email::parse(user.email.clone()).context("a stored email address is invalid")?,
        name: format!("{} {}", user.first_name, user.last_name),
    })
}

fn locale(user: &user::Model) -> Locale {
    Locale::parse(&user.locale).unwrap_or(Locale::Fr)
}

fn build(user: &user::Model, template: Template, vars: Value) -> anyhow::Result<MailRequest> {
    let vars: Map<String, Value> = match vars {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    MailRequest::new(template, locale(user), recipient(user)?, vars)
        .with_context(|| format!("building a {template} mail request failed"))
}

/// `welcome {login}`.
pub(crate) fn welcome(user: &user::Model) -> anyhow::Result<MailRequest> {
    build(user, Template::Welcome, json!({ "login": user.login }))
}

/// `account_updated {changed}`: field names only, never values.
pub(crate) fn account_updated(user: &user::Model, changed: &[&str]) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::AccountUpdated,
        json!({ "changed": changed }),
    )
}

/// `account_deleted {login}`, to the address the user had before deletion.
pub(crate) fn account_deleted(user: &user::Model) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::AccountDeleted,
        json!({ "login": user.login }),
    )
}

/// `password_reset {reset_url, expires_at}`.
pub(crate) fn password_reset(
    user: &user::Model,
    reset_url: &str,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::PasswordReset,
        json!({
            "reset_url": reset_url,
            "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
    )
}
