//! The single-use tokens that mailed links carry (password resets, address proofs), and the
//! answer floor of the open routes that mail them.
//!
//! A token is 32 random bytes, URL-safe base64; only its SHA-256 is stored, so a copy of the
//! database cannot use anyone's link. A token row has its hash, an expiry and a `used_at`:
//! [`usable`] selects it while unused and unexpired, and using it is a conditional update on
//! the same condition, so two concurrent uses cannot both succeed.

use crate::body_reader::BodyReader;
use crate::entities::user;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Email;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// A fresh token for a link.
pub(crate) struct LinkToken {
    /// The token itself: it goes into the mailed link and nowhere else.
    pub token: String,
    /// Its hex SHA-256: what the database keeps.
    pub hash: String,
}

impl LinkToken {
    pub(crate) fn new() -> Self {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash = token_hash(&token);
        Self { token, hash }
    }

    /// `url` (a `users.*_url` setting) with `{token}` replaced by this token.
    pub(crate) fn link(&self, url: &str) -> String {
        url.replace("{token}", &self.token)
    }
}

/// The hex SHA-256 of `token`, as token tables store it.
pub(crate) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token row whose hash column `hash_column` is `hash`, if it is unused (`used_column` is
/// null) and unexpired (`expires_column` after `now`, ms).
pub(crate) fn usable<C: ColumnTrait>(
    [hash_column, used_column, expires_column]: [C; 3],
    hash: &str,
    now: i64,
) -> Condition {
    Condition::all()
        .add(hash_column.eq(hash))
        .add(used_column.is_null())
        .add(expires_column.gt(now))
}

/// An open route that mails a link answers no sooner than this, whether the address is known
/// (a lookup, a transaction) or not (a lookup), so that its timing tells nothing.
const ANSWER_FLOOR: Duration = Duration::from_millis(200);

/// Serves an open route that mails a link to the address of an `{email}` body: `mail` runs
/// for the account of that address (compared in canonical form), if there is one, and the
/// answer is 202 either way and no sooner than [`ANSWER_FLOOR`], so that it tells nothing
/// about the address.
pub(crate) async fn mail_link_to_account<Fut>(
    state: &AppState,
    body: Map<String, Value>,
    route: &'static str,
    mail: impl FnOnce(user::Model) -> Fut,
) -> Result<StatusCode, ApiError>
where
    Fut: Future<Output = Result<(), ApiError>>,
{
    let started = Instant::now();
    let mut fields = BodyReader::new(body, &["email"]);
    let email = fields.required_string("email");
    let email = fields.parse(email, Email::parse);
    fields.finish()?;
    let Some(email) = email else {
        return Err(ApiError::field("email", "is required"));
    };
    let result = match user::Entity::find()
        .filter(user::Column::EmailKey.eq(email.canonical()))
        .one(&state.db)
        .await
    {
        Ok(Some(found)) => mail(found).await,
        Ok(None) => Ok(()),
        Err(e) => Err(e.into()),
    };
    wait_out_answer_floor(started, route).await;
    result.map(|()| StatusCode::ACCEPTED)
}

/// Waits until [`ANSWER_FLOOR`] has passed since `started`, even after an error, so that
/// failures do not stand out either.
async fn wait_out_answer_floor(started: Instant, route: &'static str) {
    if let Some(rest) = ANSWER_FLOOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    } else {
        tracing::warn!(
            route,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "a request that mails a link took longer than its answer floor"
        );
    }
}
