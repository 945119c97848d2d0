//! `PATCH /users/{id}` and `DELETE /users/{id}`: each change writes its mail request in the
//! same transaction. A new password ends the user's older session tokens (see `session`).

use crate::auth::Caller;
use crate::entities::user;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, JsonObject};
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

/// `PATCH /users/{id}`: changes the fields sent; mails `account_updated` with the names of
/// the fields whose value really changed, and nothing when none did.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    request_body(content = super::openapi::UserPatchDoc, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the user as it now is", body = UserResponse),
        (status = 400, description = "invalid fields, each named in `details`; or a bad id", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user", body = super::openapi::ErrorBody),
        (status = 409, description = "the login or the email is taken", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 503, description = "a new password, and too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn update_user(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): JsonObject,
) -> Result<Json<UserResponse>, ApiError> {
    caller.may_act_on(id)?;
    let patch = UserPatch::parse(body)?;
    let current = find(&state, id).await?;

    // Hashing happens before the transaction so that no write lock is held for tens of
    // milliseconds. A password equal to the current one is not a change.
    let new_hash = match patch.password.clone() {
        Some(password) => {
            let same = state
                .hasher
                .verify(
                    password.expose().to_owned(),
                    Some(current.password_hash.clone()),
                )
                .await?;
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
    let mut changed: Vec<&str> = Vec::new();
    let mut row = before.clone().into_active_model();
    if let Some(login) = patch.login.filter(|l| l.as_str() != before.login) {
        row.login = Set(login.to_string());
        changed.push("login");
    }
    if let Some(email) = patch.email.filter(|e| e.as_str() != before.email) {
        row.email = Set(email.to_string());
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
    row.updated_at = Set(user::now());
    let after = row.update(&txn).await.map_err(taken_or_internal)?;
    // The notice goes to the address the account had before the change, so that the owner
    // learns of a change of address they did not make.
    let mut mail = mails::account_updated(&after, &changed)?;
    if let Ok(previous) = domain::Email::parse(before.email.clone()) {
        mail.to.email = previous;
    }
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await.map_err(taken_or_internal)?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %id, mail_id = %mail.id, changed = ?changed, "user updated");
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
    user::Entity::delete_by_id(id).exec(&txn).await?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %id, mail_id = %mail.id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn find(state: &AppState, id: Uuid) -> Result<user::Model, ApiError> {
    user::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("user not found"))
}
