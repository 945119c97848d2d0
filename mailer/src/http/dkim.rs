//! `GET /dkim`: the DNS TXT record that publishes the key signing every mail, so that an
//! operator can copy it into the zone of `mailer.dkim.domain`.

use super::AppState;
use crate::error::MailError;
use crate::sending::DkimRecord;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/dkim", get(get_dkim_record))
}

/// The TXT record to publish at `{selector}._domainkey.{domain}` for receivers to verify the
/// mails' DKIM signatures.
#[utoipa::path(get, path = "/dkim", tag = "dkim",
    responses(
        (status = 200, description = "The record of the key that signs every mail", body = DkimRecord),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "Mails are not signed: `mailer.dkim` is not set", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_dkim_record(State(state): State<AppState>) -> Result<Json<DkimRecord>, MailError> {
    state
        .dkim
        .clone()
        .map(Json)
        .ok_or_else(|| MailError::missing("Mails are not signed: mailer.dkim is not set."))
}
