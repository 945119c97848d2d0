//! Session tokens handed out by `POST /authenticate`: `<user id>.<expiry>.<HMAC-SHA256>`.
//!
//! The MAC covers the payload and the user's stored password hash (its PHC string, which
//! holds a fresh salt for every new password). A token therefore verifies only while its user
//! keeps the password it was issued under: a change or a reset ends every older token with
//! no table of sessions to keep. Checking a token reads the user's current hash.
//! Nothing secret is inside; the user id is not a secret.

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

/// A well-formed, unexpired token whose signature is still to be checked against the
/// user's current password hash.
pub(crate) struct SessionClaim<'a> {
    /// The user the token speaks for.
    pub user: Uuid,
    payload: &'a str,
    signature: Vec<u8>,
}

impl SessionKeys {
    pub fn new(secret: &domain::Secret) -> Self {
        Self {
            secret: secret.expose().as_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &str, password_hash: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        // The payload has no NUL, so payload and hash cannot be shifted into one another.
        mac.update(b"\0");
        mac.update(password_hash.as_bytes());
        mac
    }

    /// A token for `user`, whose stored hash is `password_hash`, valid until
    /// `now + SESSION_LIFETIME`.
    pub fn issue(
        &self,
        user: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires = now + SESSION_LIFETIME;
        let payload = format!("{}.{}", user.simple(), expires.timestamp());
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(&payload, password_hash).finalize().into_bytes());
        (format!("{payload}.{signature}"), expires)
    }

    /// The claim of a well-formed token that has not expired; its signature is not checked yet.
    pub fn parse<'a>(&self, token: &'a str, now: DateTime<Utc>) -> Option<SessionClaim<'a>> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let (user, expires) = payload.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        if expires <= now.timestamp() {
            return None;
        }
        Some(SessionClaim {
            user: Uuid::try_parse(user).ok()?,
            payload,
            signature,
        })
    }

    /// True when `claim` was signed by this service for the user's current `password_hash`.
    pub fn verify(&self, claim: &SessionClaim<'_>, password_hash: &str) -> bool {
        // verify_slice compares in constant time.
        self.mac(claim.payload, password_hash)
            .verify_slice(&claim.signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=7168,t=5,p=2$c2FsdA$aGFzaA";

    fn check(keys: &SessionKeys, token: &str, hash: &str, now: DateTime<Utc>) -> Option<Uuid> {
        let claim = keys.parse(token, now)?;
        keys.verify(&claim, hash).then_some(claim.user)
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_not_after_tampering() {
        let keys = SessionKeys::new(&domain::Secret::new("k"));
        let user = Uuid::now_v7();
        let now = Utc::now();
        let (token, _) = keys.issue(user, HASH, now);
        assert_eq!(check(&keys, &token, HASH, now), Some(user));
        assert_eq!(check(&keys, &token, HASH, now + SESSION_LIFETIME), None);
        let other = SessionKeys::new(&domain::Secret::new("other"));
        assert_eq!(check(&other, &token, HASH, now), None);
        let forged = token.replacen(
            &user.simple().to_string(),
            &Uuid::now_v7().simple().to_string(),
            1,
        );
        assert_eq!(check(&keys, &forged, HASH, now), None);
        assert_eq!(check(&keys, "garbage", HASH, now), None);
    }

    #[test]
    fn a_token_dies_with_the_password_hash_it_was_issued_under() {
        let keys = SessionKeys::new(&domain::Secret::new("k"));
        let user = Uuid::now_v7();
        let now = Utc::now();
        let (token, _) = keys.issue(user, HASH, now);
        let new_hash = HASH.replace("c2FsdA", "bmV3c2FsdA");
        assert_eq!(check(&keys, &token, &new_hash, now), None);
    }
}
