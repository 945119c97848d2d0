//! The suppression list: `GET /suppressions`, `POST /suppressions`,
//! `DELETE /suppressions/{email}`. A recipient the SMTP server refused for good is added by
//! the delivery loop; operators add and remove addresses here.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Paging};
use crate::error::MailError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use domain::Email;
use serde::Deserialize;

/// The longest `reason` an operator may give.
const MAX_REASON_CHARS: usize = 1000;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/suppressions", get(list).post(add))
        .route("/suppressions/{email}", delete(remove))
}

/// `GET /suppressions` query parameters (read as text, like those of `GET /mails`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The page, from 1 (default 1).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Entries per page, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

impl PageParams {
    /// The page asked for, checked.
    pub fn paging(&self) -> Result<Paging, MailError> {
        Paging::read(self.page.as_deref(), self.per_page.as_deref())
    }
}

/// The addresses the mailer will not send to, newest first.
#[utoipa::path(get, path = "/suppressions", tag = "suppressions", params(PageParams),
    responses(
        (status = 200, description = "One page of the suppression list", body = crate::store::SuppressionPage),
        (status = 400, description = "A bad parameter", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<impl IntoResponse, MailError> {
    let Paging { page, per_page } = params.paging()?;
    Ok(Json(state.core.store().suppressions(page, per_page).await?))
}

/// The body of `POST /suppressions`. Read as text, so that a bad value gets the route's own
/// error code (`invalid_email`); described with the values it takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressionBody {
    /// The address.
    #[schema(required = true, value_type = String, format = Email, max_length = 254)]
    email: Option<String>,
    /// Why (at most 1,000 characters, no control characters).
    #[schema(max_length = 1000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    reason: Option<String>,
}

fn address(value: &str) -> Result<Email, MailError> {
    Email::parse(value.to_string())
        .map_err(|e| MailError::invalid("invalid_email", format!("email {}.", e.message)))
}

/// Adds an address: 201 with its entry, or 200 with the entry it already had.
#[utoipa::path(post, path = "/suppressions", tag = "suppressions",
    request_body(content = NewSuppressionBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Added", body = crate::store::Suppression),
        (status = 200, description = "Listed already; its first reason is kept", body = crate::store::Suppression),
        (status = 400, description = "Not an address, or a bad body", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Content type is not JSON", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewSuppressionBody>,
) -> Result<impl IntoResponse, MailError> {
    let email = address(
        body.email
            .as_deref()
            .ok_or_else(|| MailError::invalid("invalid_email", "email is required."))?,
    )?;
    if let Some(reason) = &body.reason
        && (reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control))
    {
        return Err(MailError::invalid(
            "invalid_reason",
            format!(
                "reason must be at most {MAX_REASON_CHARS} characters, without control characters."
            ),
        ));
    }
    let (entry, added) = state.core.suppress(&email, body.reason).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

/// Removes an address: 204, or 404 when it was not listed. Mails to it are sent again from
/// the next request on (those stored `suppressed` stay so).
#[utoipa::path(delete, path = "/suppressions/{email}", tag = "suppressions",
    params(("email" = String, Path, format = Email, description = "The address (URL-encoded), spelt any way: compared in canonical form (domain by UTS-46, local part in NFC and without case)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an address", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "Not on the list", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    ApiPath(email): ApiPath<String>,
) -> Result<StatusCode, MailError> {
    let email = address(&email)?;
    if state.core.store().unsuppress(&email).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(MailError::missing(format!(
            "{} is not on the suppression list.",
            email.as_str()
        )))
    }
}
