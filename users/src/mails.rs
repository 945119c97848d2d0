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
    Locale::parse(&user.locale).unwrap_or(Locale::FR)
}

fn build(user: &user::Model, template: Template, vars: Value) -> anyhow::Result<MailRequest> {
    let vars: Map<String, Value> = match vars {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    MailRequest::new(template.clone(), locale(user), recipient(user)?, vars)
        .with_context(|| format!("building a {template} mail request failed"))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A link that proves the user's address, and when it stops working.
pub(crate) struct VerifyLink<'a> {
    pub url: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// `welcome {login}`, with `verify_url` and `expires_at` when `link` proves the address.
pub(crate) fn welcome(
    user: &user::Model,
    link: Option<VerifyLink<'_>>,
) -> anyhow::Result<MailRequest> {
    let vars = match link {
        Some(link) => json!({
            "login": user.login,
            "verify_url": link.url,
            "expires_at": rfc3339(link.expires_at),
        }),
        None => json!({ "login": user.login }),
    };
    build(user, Template::WELCOME, vars)
}

/// `email_verification {verify_url, expires_at}`, to the user's (new) address.
pub(crate) fn email_verification(
    user: &user::Model,
    link: VerifyLink<'_>,
) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::EMAIL_VERIFICATION,
        json!({ "verify_url": link.url, "expires_at": rfc3339(link.expires_at) }),
    )
}

/// `email_changed {new_email, changed_at}`: the user's new address masked, and no link. The
/// caller sends it to the address the account had.
pub(crate) fn email_changed(
    user: &user::Model,
    changed_at: DateTime<Utc>,
) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::EMAIL_CHANGED,
        json!({
            "new_email": domain::mask_email(&user.email),
            "changed_at": rfc3339(changed_at),
        }),
    )
}

/// `password_changed {changed_at}`.
pub(crate) fn password_changed(
    user: &user::Model,
    changed_at: DateTime<Utc>,
) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::PASSWORD_CHANGED,
        json!({ "changed_at": rfc3339(changed_at) }),
    )
}

/// `account_updated {changed}`: field names only, never values.
pub(crate) fn account_updated(user: &user::Model, changed: &[&str]) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::ACCOUNT_UPDATED,
        json!({ "changed": changed }),
    )
}

/// `account_deleted {login}`, to the address the user had before deletion. It asks the
/// mailer to erase every record it holds for that address once this mail is delivered: the
/// request travels in the outbox with the deletion, so the erasure is never lost.
pub(crate) fn account_deleted(user: &user::Model) -> anyhow::Result<MailRequest> {
    let mut request = build(
        user,
        Template::ACCOUNT_DELETED,
        json!({ "login": user.login }),
    )?;
    request.erase_recipient = true;
    Ok(request)
}

/// `password_reset {reset_url, expires_at}`.
pub(crate) fn password_reset(
    user: &user::Model,
    reset_url: &str,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<MailRequest> {
    build(
        user,
        Template::PASSWORD_RESET,
        json!({
            "reset_url": reset_url,
            "expires_at": rfc3339(expires_at),
        }),
    )
}
