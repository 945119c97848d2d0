//! Session tokens handed out by `POST /authenticate`: `<user id>.<expiry>.<HMAC-SHA256>`.
//!
//! The token is stateless: the signature proves the service issued it, the expiry bounds it
//! to one hour. Nothing secret is inside; the user id is not a secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;
use uuid::Uuid;

/// How long a session token is valid.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(3600);

/// Signs and checks session tokens with `users.session_secret`.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    secret: Vec<u8>,
}

impl SessionKeys {
    pub fn new(secret: &domain::Secret) -> Self {
        Self {
            secret: secret.expose().as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// A token for `user`, valid until `now + SESSION_LIFETIME`.
    pub fn issue(&self, user: Uuid, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires = now + SESSION_LIFETIME;
        let payload = format!("{}.{}", user.simple(), expires.timestamp());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{payload}.{signature}"), expires)
    }

    /// The user a token speaks for, if it is well formed, signed by this service and unexpired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Uuid> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&signature).ok()?;
        let (user, expires) = payload.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        if expires <= now.timestamp() {
            return None;
        }
        Uuid::try_parse(user).ok()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires_and_not_after_tampering() {
        let keys = SessionKeys::new(&domain::Secret::new("k"));
        let user = Uuid::now_v7();
        let now = Utc::now();
        let (token, _) = keys.issue(user, now);
        assert_eq!(keys.verify(&token, now), Some(user));
        assert_eq!(keys.verify(&token, now + SESSION_LIFETIME), None);
        let other = SessionKeys::new(&domain::Secret::new("other"));
        assert_eq!(other.verify(&token, now), None);
        let forged = token.replacen(
            &user.simple().to_string(),
            &Uuid::now_v7().simple().to_string(),
            1,
        );
        assert_eq!(keys.verify(&forged, now), None);
        assert_eq!(keys.verify("garbage", now), None);
    }
}
