//! `PATCH /users/{id}` and `DELETE /users/{id}`: each change writes its mail requests in the
//! same transaction. A new password, and the deletion, end every session of the user in that
//! transaction too.
//!
//! A session token that changes `password` or `email` must prove its holder knows the
//! current password (`current_password`): a stolen token alone cannot take the account over.
//! A wrong one counts as a login failure of the user's login and of the client.
//!
//! A `PATCH` mails one notice per kind of change, each to the address the account had before
//! it, so that the owner learns of a change they did not make: `email_changed` (the new
//! address masked, no link), `password_changed`, and `account_updated` naming the other
//! fields. A new address is stored unproved and gets an `email_verification` mail; the
//! links mailed to the previous one (resets, verifications) stop working.

use super::email_verifications::{Verification, forget_links_of};
use crate::auth::Caller;
use crate::entities::user;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, JsonObject};
use crate::limits::ClientAddr;
use crate::session_store;
use crate::state::AppState;
use crate::user_request::UserPatch;
use crate::user_response::{UserResponse, functions_of};
use crate::write_txn::{begin_write, taken_or_internal};
use crate::{mails, outbox};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use uuid::Uuid;

/// `PATCH /users/{id}`: changes the fields sent and mails what really changed (see the
/// module), nothing when nothing did.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    request_body(content = super::openapi::UserPatchDoc, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the user as it now is", body = UserResponse),
        (status = 400, description = "invalid fields, each named in `details` (`current_password` when a session token changes the password or the email without it); or a bad id", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token, or `invalid_credentials`: a wrong `current_password`", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user", body = super::openapi::ErrorBody),
        (status = 409, description = "the login or the email is taken", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "a wrong `current_password` and too many failures for this login or client; see Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "a new password, and too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn update_user(
    caller: Caller,
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): JsonObject,
) -> Result<Json<UserResponse>, ApiError> {
    caller.may_act_on(id)?;
    let mut patch = UserPatch::parse(body)?;
    let current = find(&state, id).await?;
    let given = patch.current_password.take();
    let changes_secret = patch.password.is_some()
        || patch
            .email
            .as_ref()
            .is_some_and(|e| e.as_str() != current.email);
    // The current password, once checked; the admin token needs none.
    let proven = match (&caller, changes_secret) {
        (Caller::Session(_), true) => {
            Some(check_current_password(&state, client, &current, given).await?)
        }
        _ => None,
    };

    // Hashing happens before the transaction so that no write lock is held for tens of
    // milliseconds. A password equal to the current one is not a change.
    let new_hash = match patch.password.clone() {
        Some(password) => {
            let same = match &proven {
                Some(known) => {
                    domain::constant_time_eq(known.as_bytes(), password.expose().as_bytes())
                }
                None => {
                    state
                        .hasher
                        .verify(
                            password.expose().to_owned(),
                            Some(current.password_hash.clone()),
                        )
                        .await?
                }
            };
            if same {
                None
            } else {
                Some(state.hasher.hash(password).await?)
            }
        }
        None => None,
    };

    let txn = begin_write(&state.db).await?;
    let before = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("user not found"))?;
    if proven.is_some() && before.password_hash != current.password_hash {
        // The password changed since it was checked: the proof is of an old one.
        txn.rollback().await?;
        return Err(ApiError::InvalidCredentials);
    }
    let mut changed: Vec<&str> = Vec::new();
    let mut row = before.clone().into_active_model();
    if let Some(login) = patch.login.filter(|l| l.as_str() != before.login) {
        row.login = Set(login.to_string());
        changed.push("login");
    }
    if let Some(email) = patch.email.filter(|e| e.as_str() != before.email) {
        row.email_key = Set(email.canonical().to_owned());
        row.email = Set(email.to_string());
        row.email_verified_at = Set(None);
        changed.push("email");
    }
    if let Some(hash) = new_hash {
        row.password_hash = Set(hash);
        changed.push("password");
    }
    if let Some(first) = patch.first_name.filter(|f| *f != before.first_name) {
        row.first_name = Set(first);
        changed.push("first_name");
    }
    if let Some(last) = patch.last_name.filter(|l| *l != before.last_name) {
        row.last_name = Set(last);
        changed.push("last_name");
    }
    if let Some(company) = patch.company.filter(|c| *c != before.company) {
        row.company = Set(company);
        changed.push("company");
    }
    if let Some(functions) = patch.functions.filter(|f| *f != functions_of(&before)) {
        row.functions = Set(serde_json::json!(functions));
        changed.push("functions");
    }
    if let Some(locale) = patch.locale.filter(|l| l.as_str() != before.locale) {
        row.locale = Set(locale.as_str().to_owned());
        changed.push("locale");
    }
    if changed.is_empty() {
        txn.rollback().await?;
        return Ok(Json(before.into()));
    }
    let changed_at = user::now();
    row.updated_at = Set(changed_at);
    let after = row.update(&txn).await.map_err(taken_or_internal)?;
    // After the row's update, so that a session being opened meanwhile either sees the new
    // hash or is ended here (see `session_store::open`).
    if changed.contains(&"password") {
        session_store::end_all(&txn, id).await?;
    }
    let mut notices = Vec::new();
    if changed.contains(&"email") {
        forget_links_of(&txn, id).await?;
        let verification = Verification::new(&state);
        verification.insert(&txn, &after).await?;
        outbox::enqueue(
            &txn,
            &mails::email_verification(&after, verification.link())?,
        )
        .await?;
        notices.push(mails::email_changed(&after, changed_at)?);
    }
    if changed.contains(&"password") {
        notices.push(mails::password_changed(&after, changed_at)?);
    }
    let others: Vec<&str> = changed
        .iter()
        .copied()
        .filter(|field| !matches!(*field, "email" | "password"))
        .collect();
    if !others.is_empty() {
        notices.push(mails::account_updated(&after, &others)?);
    }
    let previous = domain::Email::parse(before.email.clone()).ok();
    for mut notice in notices {
        if let Some(previous) = &previous {
            notice.to.email = previous.clone();
        }
        outbox::enqueue(&txn, &notice).await?;
    }
    txn.commit().await.map_err(taken_or_internal)?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %id, changed = ?changed, "user updated");
    Ok(Json(after.into()))
}

/// `DELETE /users/{id}`: deletes the user and mails `account_deleted` to its address.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the id is not a UUID", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user", body = super::openapi::ErrorBody)))]
pub(crate) async fn delete_user(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.may_act_on(id)?;
    let txn = begin_write(&state.db).await?;
    // The row is read inside the transaction: the mail needs the address it had.
    let before = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("user not found"))?;
    let mail = mails::account_deleted(&before)?;
    session_store::end_all(&txn, id).await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %id, mail_id = %mail.id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The current password `given` by a session token changing `password` or `email`: 400
/// naming it when missing, 401 when wrong (a login failure), 429 when the login limits say so.
async fn check_current_password(
    state: &AppState,
    client: ClientAddr,
    current: &user::Model,
    given: Option<String>,
) -> Result<String, ApiError> {
    let given = given.ok_or_else(|| {
        ApiError::field(
            "current_password",
            "is required to change the password or the email with a session token",
        )
    })?;
    let attempt = state.limits.reserve_login_failure(&current.login, client)?;
    let right = state
        .hasher
        .verify(given.clone(), Some(current.password_hash.clone()))
        .await?;
    if !right {
        attempt.failed();
        return Err(ApiError::InvalidCredentials);
    }
    attempt.succeeded();
    Ok(given)
}

async fn find(state: &AppState, id: Uuid) -> Result<user::Model, ApiError> {
    user::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("user not found"))
}
