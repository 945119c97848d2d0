//! `POST /users`, `GET /users` and `GET /users/{id}`.

use super::email_verifications::Verification;
use crate::auth::Caller;
use crate::entities::user;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, JsonObject};
use crate::limits::ClientAddr;
use crate::state::AppState;
use crate::user_request::NewUser;
use crate::user_response::UserResponse;
use crate::write_txn::{begin_write, taken_or_internal};
use crate::{mails, outbox, user_reader};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::LOCATION};
use sea_orm::{
    ActiveModelTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The largest page size.
const MAX_PER_PAGE: u64 = 100;
/// The last page number a list may ask for.
const MAX_PAGE: u64 = 1_000_000;

/// `POST /users`: creates a user, its address not proved yet, and, in the same transaction,
/// its welcome mail request, which carries the link that proves the address.
#[utoipa::path(post, path = "/users", tag = "users",
    request_body(content = super::openapi::NewUserDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "created; `Location` names it", body = UserResponse,
            headers(("Location" = String, description = "/users/{id}"))),
        (status = 400, description = "invalid fields, each named in `details`; or not a JSON object", body = super::openapi::ErrorBody),
        (status = 409, description = "the login or the email is taken", body = super::openapi::ErrorBody),
        (status = 413, description = "the body is over 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "the body is not declared as JSON", body = super::openapi::ErrorBody),
        (status = 429, description = "too many creates from this client; see Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "too many password hashes waiting; Retry-After: 1", body = super::openapi::ErrorBody)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): JsonObject,
) -> Result<(StatusCode, HeaderMap, Json<UserResponse>), ApiError> {
    state.limits.admit_create(client)?;
    let new = NewUser::parse(body)?;
    let password_hash = state.hasher.hash(new.password).await?;
    let now = user::now();
    let row = user::Model {
        id: Uuid::now_v7(),
        login: new.login.to_string(),
        email: new.email.to_string(),
        email_key: new.email.canonical().to_owned(),
        password_hash,
        first_name: new.first_name,
        last_name: new.last_name,
        company: new.company,
        functions: serde_json::json!(new.functions),
        locale: new.locale.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        email_verified_at: None,
    };
    let verification = Verification::new(&state);
    let mail = mails::welcome(&row, Some(verification.link()))?;
    let txn = begin_write(&state.db).await?;
    user::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(&txn)
        .await
        .map_err(taken_or_internal)?;
    verification.insert(&txn, &row).await?;
    outbox::enqueue(&txn, &mail).await?;
    txn.commit().await.map_err(taken_or_internal)?;
    state.outbox_wakeup.notify_one();
    tracing::info!(user_id = %row.id, mail_id = %mail.id, "user created");

    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/users/{}", row.id)) {
        headers.insert(LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(row.into())))
}

/// `?page=&per_page=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u64>,
    /// From 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u64>,
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserPage {
    items: Vec<UserResponse>,
    total: u64,
    page: u64,
    per_page: u64,
}

/// `GET /users`: the admin's paginated list, oldest first.
#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one page of users, oldest first", body = UserPage),
        (status = 400, description = "a bad page or per_page", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token: only the admin token lists users", body = super::openapi::ErrorBody)))]
pub(crate) async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    caller.must_be_admin()?;
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(20);
    let mut errors = std::collections::BTreeMap::new();
    if !(1..=MAX_PAGE).contains(&page) {
        errors.insert("page".to_owned(), format!("must be from 1 to {MAX_PAGE}"));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        errors.insert(
            "per_page".to_owned(),
            format!("must be from 1 to {MAX_PER_PAGE}"),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    // The offset must fit the databases' signed 64-bit integers.
    let offset = (page - 1)
        .checked_mul(per_page)
        .filter(|offset| i64::try_from(*offset).is_ok())
        .ok_or_else(|| ApiError::field("page", "is too large"))?;
    let total = user::Entity::find().count(&state.db).await?;
    let items = user::Entity::find()
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .offset(offset)
        .limit(per_page)
        .all(&state.db)
        .await?;
    Ok(Json(UserPage {
        items: items.into_iter().map(UserResponse::from).collect(),
        total,
        page,
        per_page,
    }))
}

/// `GET /users/{id}`.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the user", body = UserResponse),
        (status = 400, description = "the id is not a UUID", body = super::openapi::ErrorBody),
        (status = 401, description = "no or a bad token", body = super::openapi::ErrorBody),
        (status = 403, description = "a session token of another user", body = super::openapi::ErrorBody),
        (status = 404, description = "no such user", body = super::openapi::ErrorBody)))]
pub(crate) async fn get_user(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<UserResponse>, ApiError> {
    caller.may_act_on(id)?;
    // A session token's user was read with its session.
    if let Some(own) = caller.session() {
        return Ok(Json(own.user.as_ref().clone().into()));
    }
    let in_place = state
        .reader
        .as_deref()
        .and_then(|reader| reader.try_find(id));
    let found = match in_place {
        Some(found) => found,
        None => user_reader::user_by_id(id).one(&state.db).await?,
    };
    let row = found.ok_or(ApiError::NotFound("user not found"))?;
    Ok(Json(row.into()))
}
