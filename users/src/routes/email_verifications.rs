//! Proving an address: `POST /email-verifications` (mail a new link),
//! `GET /email-verifications/{token}` (a page with one button, which proves nothing by
//! itself, so that a mail scanner fetching the link does not prove the address) and
//! `POST /email-verifications/{token}` (the button, or a JSON client: proves it).
//!
//! A [`Verification`] is written in the same transaction as the change that asks for it
//! (`POST /users`, a `PATCH` of `email`) or as its `email_verification` mail. Its token proves
//! the address it was mailed to and no other, once, for `users.verification_ttl_hours`.

use super::html_page::{self, FailureTexts};
use crate::entities::{email_verification, user};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, JsonObject};
use crate::limits::ClientAddr;
use crate::mails::{self, VerifyLink};
use crate::outbox::{self, now_ms};
use crate::state::AppState;
use crate::tokens::{LinkToken, mail_link_to_account, token_hash, usable};
use crate::write_txn::begin_write;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
};

/// A new verification link, ready to be written with the change or mail that carries it.
pub(super) struct Verification {
    token: LinkToken,
    url: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Verification {
    pub(super) fn new(state: &AppState) -> Self {
        let token = LinkToken::new();
        let url = token.link(&state.verify_url);
        let created_at = Utc::now();
        Self {
            token,
            url,
            created_at,
            expires_at: created_at + state.verification_ttl,
        }
    }

    /// The link and its expiry, for the mail.
    pub(super) fn link(&self) -> VerifyLink<'_> {
        VerifyLink {
            url: &self.url,
            expires_at: self.expires_at,
        }
    }

    /// Stores the token's hash for `user`'s current address, in the caller's transaction.
    pub(super) async fn insert(
        &self,
        txn: &impl ConnectionTrait,
        user: &user::Model,
    ) -> Result<(), DbErr> {
        email_verification::Entity::insert(email_verification::ActiveModel {
            token_hash: Set(self.token.hash.clone()),
            user_id: Set(user.id),
            email: Set(user.email.clone()),
            created_at_ms: Set(self.created_at.timestamp_millis()),
            expires_at_ms: Set(self.expires_at.timestamp_millis()),
            used_at_ms: Set(None),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }
}

/// `POST /email-verifications`: 202 whether or not the address belongs to a user, and
/// whether or not it is already proved.
#[utoipa::path(post, path = "/email-verifications", tag = "email verifications",
    request_body(content = super::openapi::AddressDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "accepted; a link is mailed when the address belongs to an account not yet proved, at most verification_mails_per_address per hour"),
        (status = 400, description = "not an address", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "too many requests from this client; see Retry-After", body = super::openapi::ErrorBody)))]
pub(crate) async fn request_email_verification(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    state.limits.admit_verification(client)?;
    mail_link_to_account(&state, body, "/email-verifications", |found| {
        mail_new_link(&state, found)
    })
    .await
}

async fn mail_new_link(state: &AppState, found: user::Model) -> Result<(), ApiError> {
    if found.email_verified_at.is_some() {
        tracing::info!(user_id = %found.id, "verification not mailed: the address is already proved");
        return Ok(());
    }
    if !state.limits.allow_verification_mail(&found.email_key) {
        tracing::info!(user_id = %found.id, "verification not mailed: the address had its verification mails for the hour");
        return Ok(());
    }
    let verification = Verification::new(state);
    let mail = mails::email_verification(&found, verification.link())?;
    let txn = begin_write(&state.db).await?;
    verification.insert(&txn, &found).await?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %found.id, mail_id = %mail.id, "address verification mailed");
    Ok(())
}

const TITLE: &str = "address confirmation";

const FAILURE: FailureTexts = FailureTexts {
    title: TITLE,
    invalid_heading: "This link no longer works",
    invalid_sentence: "It is unknown, expired or already used. Ask for a new confirmation link.",
    other_heading: "The address could not be confirmed",
};

/// `GET /email-verifications/{token}`: a page whose one button proves the address; a page
/// saying the link no longer works when it does not. Proves nothing by itself.
#[utoipa::path(get, path = "/email-verifications/{token}", tag = "email verifications",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "an HTML page with one button that confirms the address", content_type = "text/html"),
        (status = 400, description = "an HTML page: the link is unknown, expired or used", content_type = "text/html")))]
pub(crate) async fn show_verification_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    let found = email_verification::Entity::find()
        .filter(usable_verification(&token_hash(&token), now_ms()))
        .one(&state.db)
        .await;
    match found {
        Ok(Some(_)) => html_page::page(
            StatusCode::OK,
            TITLE,
            "<h1>Confirm your address</h1>\
             <p>Press the button to confirm that this address is yours.</p>\
             <form method=\"post\"><button type=\"submit\">Confirm my address</button></form>",
        ),
        Ok(None) => html_page::error_page(ApiError::InvalidToken, &FAILURE),
        Err(e) => html_page::error_page(e.into(), &FAILURE),
    }
}

/// `POST /email-verifications/{token}`: proves the address the link was mailed to; 400 for
/// an unknown, expired or used token. The page's form (`application/x-www-form-urlencoded`)
/// gets an HTML page; any other request gets 204 or the error as JSON. The body is not read.
#[utoipa::path(post, path = "/email-verifications/{token}", tag = "email verifications",
    params(("token" = String, Path)),
    request_body(content = serde_json::Value, description = "nothing, {} as JSON, or the page's empty form (answered with an HTML page)"),
    responses((status = 204, description = "the address is proved"),
        (status = 200, description = "form submissions: the address is proved", content_type = "text/html"),
        (status = 400, description = "the link is unknown, expired or used (an HTML page for form submissions)", body = super::openapi::ErrorBody)))]
pub(crate) async fn complete_email_verification(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    request: Request,
) -> Response {
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let verified = verify(&state, &token).await;
    match (verified, is_form) {
        (Ok(()), false) => StatusCode::NO_CONTENT.into_response(),
        (Ok(()), true) => html_page::page(
            StatusCode::OK,
            TITLE,
            "<h1>Address confirmed</h1><p>Thank you: your address is confirmed. You can close this page.</p>",
        ),
        (Err(e), false) => e.into_response(),
        (Err(e), true) => html_page::error_page(e, &FAILURE),
    }
}

/// Uses `token` up and marks the address it was mailed to as proved, if the account still
/// has it.
async fn verify(state: &AppState, token: &str) -> Result<(), ApiError> {
    let hash = token_hash(token);
    let now = now_ms();
    let txn = begin_write(&state.db).await?;
    let Some(found) = email_verification::Entity::find()
        .filter(usable_verification(&hash, now))
        .one(&txn)
        .await?
    else {
        txn.rollback().await?;
        return Err(ApiError::InvalidToken);
    };
    // Conditional, so two concurrent uses cannot both succeed.
    let used = email_verification::Entity::update_many()
        .col_expr(email_verification::Column::UsedAtMs, Expr::value(now))
        .filter(usable_verification(&hash, now))
        .exec(&txn)
        .await?;
    let proved = user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(user::now()))
        .filter(user::Column::Id.eq(found.user_id))
        .filter(user::Column::Email.eq(found.email.as_str()))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ApiError::InvalidToken);
    }
    txn.commit().await?;
    tracing::info!(
        user_id = %found.user_id,
        newly_proved = proved.rows_affected == 1,
        "address verification link used"
    );
    Ok(())
}

/// The verification with this token hash, if it is unused and unexpired at `now` (ms).
fn usable_verification(hash: &str, now: i64) -> Condition {
    usable(
        [
            email_verification::Column::TokenHash,
            email_verification::Column::UsedAtMs,
            email_verification::Column::ExpiresAtMs,
        ],
        hash,
        now,
    )
}

/// Deletes every pending link of `user_id`, reset and verification alike: they were mailed
/// to an address the account no longer has.
pub(super) async fn forget_links_of(
    txn: &impl ConnectionTrait,
    user_id: uuid::Uuid,
) -> Result<(), DbErr> {
    email_verification::Entity::delete_many()
        .filter(email_verification::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    crate::entities::password_reset::Entity::delete_many()
        .filter(crate::entities::password_reset::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(())
}
