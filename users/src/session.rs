//! Session tokens handed out by `POST /authenticate`: `<session id>.<secret>`, the session's
//! id as 32 hex digits and 32 random bytes in base64url.
//!
//! The token names a row of `sessions` (see `session_store`), which is the truth: a token is
//! good only while its row exists and has not expired, so ending a session is deleting its
//! row, seen at once by every process on the database. The row keeps the HMAC-SHA256 of the
//! id and the secret under `users.session_secret`, never the token: a copy of the database
//! opens no session, and a token made under another secret matches no row.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;
use uuid::Uuid;

/// How long a session is valid.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(3600);

/// Random bytes in a token's secret part.
const SECRET_BYTES: usize = 32;

/// Makes and checks session tokens with `users.session_secret`.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    secret: Vec<u8>,
}

/// A token just made: what the client gets and what the row keeps.
pub(crate) struct NewToken {
    /// The session's id.
    pub id: Uuid,
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// What the session's row stores.
    pub secret_hash: String,
}

/// A well-formed token, still to be checked against its row.
pub(crate) struct TokenClaim {
    /// The session the token names.
    pub session: Uuid,
    secret: [u8; SECRET_BYTES],
}

impl SessionKeys {
    pub fn new(secret: &domain::Secret) -> Self {
        Self {
            secret: secret.expose().as_bytes().to_vec(),
        }
    }

    /// Hex HMAC-SHA256 of the id and the secret part.
    fn secret_hash(&self, session: Uuid, secret: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(session.as_bytes());
        mac.update(secret);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A new token for a new session.
    pub fn issue(&self) -> NewToken {
        let id = Uuid::now_v7();
        let mut secret = [0u8; SECRET_BYTES];
        rand::fill(&mut secret);
        NewToken {
            id,
            token: format!("{}.{}", id.simple(), URL_SAFE_NO_PAD.encode(secret)),
            secret_hash: self.secret_hash(id, &secret),
        }
    }

    /// The claim of a well-formed token; its row is still to be read.
    pub fn parse(&self, token: &str) -> Option<TokenClaim> {
        let (id, secret) = token.split_once('.')?;
        if id.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; SECRET_BYTES];
        let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
        if decoded.len() != SECRET_BYTES {
            return None;
        }
        bytes.copy_from_slice(&decoded);
        Some(TokenClaim {
            session: Uuid::try_parse(id).ok()?,
            secret: bytes,
        })
    }

    /// True when `claim` is the token whose row stores `stored_hash`.
    pub fn verify(&self, claim: &TokenClaim, stored_hash: &str) -> bool {
        let hash = self.secret_hash(claim.session, &claim.secret);
        domain::constant_time_eq(hash.as_bytes(), stored_hash.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(keys: &SessionKeys, token: &str, stored: &str) -> Option<Uuid> {
        let claim = keys.parse(token)?;
        keys.verify(&claim, stored).then_some(claim.session)
    }

    #[test]
    fn a_token_matches_its_own_row_only_and_not_after_tampering() {
        let keys = SessionKeys::new(&domain::Secret::new("k"));
        let issued = keys.issue();
        let other = keys.issue();
        assert_eq!(
            check(&keys, &issued.token, &issued.secret_hash),
            Some(issued.id)
        );
        assert_eq!(check(&keys, &issued.token, &other.secret_hash), None);
        let other_keys = SessionKeys::new(&domain::Secret::new("other"));
        assert_eq!(check(&other_keys, &issued.token, &issued.secret_hash), None);
        let moved = issued.token.replacen(
            &issued.id.simple().to_string(),
            &other.id.simple().to_string(),
            1,
        );
        assert_eq!(check(&keys, &moved, &issued.secret_hash), None);
        assert_eq!(check(&keys, &moved, &other.secret_hash), None);
        for garbage in ["garbage", "a.b", "", &format!("{}.", issued.id.simple())] {
            assert!(keys.parse(garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn the_row_keeps_no_part_of_the_token() {
        let keys = SessionKeys::new(&domain::Secret::new("k"));
        let issued = keys.issue();
        let (_, secret) = issued.token.split_once('.').expect("two parts");
        assert!(!issued.secret_hash.contains(secret));
        assert_eq!(issued.secret_hash.len(), 64);
    }
}
