//! The user as the API shows it: every field but the password and its hash.

use crate::entities::user;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user, as every answer carries it. There is no password field, by construction.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    pub id: Uuid,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub functions: Vec<String>,
    /// `fr` or `en`: the language of the user's mails.
    pub locale: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// True once the owner has proved `email` through a mailed link.
    pub email_verified: bool,
    /// When `email` was proved; null while it is not.
    pub email_verified_at: Option<DateTime<Utc>>,
}

impl From<user::Model> for UserResponse {
    fn from(u: user::Model) -> Self {
        Self {
            id: u.id,
            functions: functions_of(&u),
            login: u.login,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            company: u.company,
            locale: u.locale,
            created_at: u.created_at,
            updated_at: u.updated_at,
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at,
        }
    }
}

/// The stored `functions` JSON as a list (anything else reads as empty).
pub(crate) fn functions_of(u: &user::Model) -> Vec<String> {
    serde_json::from_value(u.functions.clone()).unwrap_or_default()
}
