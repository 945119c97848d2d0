//! `DELETE /recipients/{email}`: erasing what the mailer holds about one address — every
//! delivery record addressed to it, spelt any way, and its `.eml` files. The users service
//! asks for it once a deleted account's last mail is sent; an operator may too.

use super::AppState;
use super::extract::ApiPath;
use crate::error::MailError;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::delete;
use domain::Email;
use serde::Serialize;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/recipients/{email}", delete(erase))
}

/// The answer of an erasure.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// How many delivery records went (0 when none was held: erasing twice is no error).
    pub erased: u64,
}

/// Erases every delivery record and `.eml` file addressed to the address. Its suppression
/// entry, if any, stays, so that it is not mailed again, but keeps only a keyed hash of the
/// address: `GET /suppressions` shows it with `email: null`.
#[utoipa::path(delete, path = "/recipients/{email}", tag = "recipients",
    params(("email" = String, Path, format = Email, description = "The address (URL-encoded), spelt any way: compared in canonical form (domain by UTS-46, local part in NFC and without case)")),
    responses(
        (status = 200, description = "Erased", body = Erased),
        (status = 400, description = "Not an address", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 503, description = "The store did not answer", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    ApiPath(email): ApiPath<String>,
) -> Result<Json<Erased>, MailError> {
    let email = Email::parse(email)
        .map_err(|e| MailError::invalid("invalid_email", format!("email {}.", e.message)))?;
    let erased = state.core.erase_recipient(&email).await?;
    Ok(Json(Erased { erased }))
}
