//! `POST /password-resets` (mail a single-use link) and `POST /password-resets/{token}`
//! (set a new password with it, from a JSON client or from the form of `reset_page`).
//!
//! Tokens are those of `tokens`: only their SHA-256 is stored, so a copy of the database
//! cannot reset anyone's password. A token works once and for one hour. The mail that
//! carries a token leaves the outbox with its payload cleared once published. A reset done
//! through the mailed link also proves the address it was mailed to.

use crate::body_reader::BodyReader;
use crate::entities::{password_reset, user};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, JsonObject};
use crate::limits::ClientAddr;
use crate::mails;
use crate::outbox::{self, now_ms};
use crate::session_store;
use crate::state::AppState;
use crate::tokens::{LinkToken, mail_link_to_account, token_hash, usable};
use crate::write_txn::begin_write;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::Password;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};
use std::time::Duration;

/// How long a reset token works.
const RESET_LIFETIME: Duration = Duration::from_secs(3600);

/// `POST /password-resets`: 202 whether or not the address belongs to a user.
#[utoipa::path(post, path = "/password-resets", tag = "password resets",
    request_body(content = super::openapi::AddressDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "accepted; past reset_mails_per_address per hour no mail is sent"),
        (status = 400, description = "not an address", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "too many requests from this client; see Retry-After", body = super::openapi::ErrorBody)))]
pub(crate) async fn request_password_reset(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    state.limits.admit_reset(client)?;
    mail_link_to_account(&state, body, "/password-resets", |found| {
        issue_reset(&state, found)
    })
    .await
}

async fn issue_reset(state: &AppState, found: user::Model) -> Result<(), ApiError> {
    if !state.limits.allow_reset_mail(&found.email_key) {
        tracing::info!(user_id = %found.id, "password reset not mailed: the address had its reset mails for the hour");
        return Ok(());
    }
    let token = LinkToken::new();
    let now = Utc::now();
    let expires_at = now + RESET_LIFETIME;
    let mail = mails::password_reset(&found, &token.link(&state.reset_url), expires_at)?;
    let txn = begin_write(&state.db).await?;
    password_reset::Entity::insert(password_reset::ActiveModel {
        token_hash: Set(token.hash),
        user_id: Set(found.id),
        created_at_ms: Set(now.timestamp_millis()),
        expires_at_ms: Set(expires_at.timestamp_millis()),
        used_at_ms: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %found.id, mail_id = %mail.id, "password reset requested");
    Ok(())
}

/// `POST /password-resets/{token}`: sets the password; 400 for an unknown, expired or used
/// token. A JSON body gets 204 or the error as JSON; the reset page's form
/// (`application/x-www-form-urlencoded`) gets an HTML page.
#[utoipa::path(post, path = "/password-resets/{token}", tag = "password resets",
    params(("token" = String, Path)),
    request_body(content(
        (super::openapi::NewPasswordDoc = "application/json"),
        (super::openapi::NewPasswordDoc = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "JSON: the password is set"),
        (status = 200, description = "the form: the password is set", content_type = "text/html", body = String),
        (status = 400, description = "`invalid_token` (unknown, expired or used; the form gets an HTML page), or a bad password",
            content((super::openapi::ErrorBody = "application/json"), (String = "text/html"))),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "neither JSON nor a form", body = super::openapi::ErrorBody),
        (status = 503, description = "too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn complete_password_reset(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    request: Request,
) -> Response {
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return super::reset_page::submit_form(state, token, request).await;
    }
    let body = match JsonObject::from_request(request, &state).await {
        Ok(ApiJson(body)) => body,
        Err(e) => return e.into_response(),
    };
    let mut fields = BodyReader::new(body, &["password"]);
    let password = fields.required_string("password");
    let password = fields.parse(password, Password::parse);
    let password = fields
        .finish()
        .and_then(|()| password.ok_or_else(|| ApiError::field("password", "is required")));
    match password {
        Ok(password) => match reset_password(&state, &token, password).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Sets `password` for the user of the reset `token`, uses the token up, and marks the
/// address proved: the link reached it. Mails `password_changed`.
pub(super) async fn reset_password(
    state: &AppState,
    token: &str,
    password: Password,
) -> Result<(), ApiError> {
    let hash = token_hash(token);
    let now = now_ms();
    let unused_and_valid = || usable_reset(&hash, now);
    // A cheap check first, so an invalid token costs no hashing.
    let reset = password_reset::Entity::find()
        .filter(unused_and_valid())
        .one(&state.db)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let new_hash = state.hasher.hash(password).await?;

    let txn = begin_write(&state.db).await?;
    // Marking the token used is conditional, so two concurrent uses cannot both succeed.
    let used = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAtMs, Expr::value(now))
        .filter(unused_and_valid())
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ApiError::InvalidToken);
    }
    let Some(found) = user::Entity::find_by_id(reset.user_id).one(&txn).await? else {
        txn.rollback().await?;
        return Err(ApiError::InvalidToken);
    };
    let changed_at = user::now();
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(new_hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(changed_at))
        .filter(user::Column::Id.eq(found.id))
        .exec(&txn)
        .await?;
    // A change of address deletes the resets sent before it (`user_changes`), so the link
    // reached the address the account has now.
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(changed_at))
        .filter(user::Column::Id.eq(found.id))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(&txn)
        .await?;
    session_store::end_all(&txn, found.id).await?;
    let mail = mails::password_changed(&found, changed_at)?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %found.id, mail_id = %mail.id, "password reset completed");
    Ok(())
}

/// True when `token` is known, unused and unexpired (the reset page asks before showing its
/// form).
pub(super) async fn token_is_usable(state: &AppState, token: &str) -> Result<bool, ApiError> {
    let found = password_reset::Entity::find()
        .filter(usable_reset(&token_hash(token), now_ms()))
        .one(&state.db)
        .await?;
    Ok(found.is_some())
}

/// The reset with this token hash, if it is unused and unexpired at `now` (ms).
fn usable_reset(hash: &str, now: i64) -> Condition {
    usable(
        [
            password_reset::Column::TokenHash,
            password_reset::Column::UsedAtMs,
            password_reset::Column::ExpiresAtMs,
        ],
        hash,
        now,
    )
}
