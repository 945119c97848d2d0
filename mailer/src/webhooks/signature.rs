//! The Standard Webhooks signature (<https://www.standardwebhooks.com>): each endpoint has a
//! secret, `whsec_` and the base64 of a random key; each request carries `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 of HMAC-SHA256(key, id.timestamp.body)>`,
//! which any of the specification's libraries checks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new endpoint secret: 32 random bytes, as the specification's libraries expect them.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    format!("{PREFIX}{}", BASE64.encode(key))
}

/// A new id of `kind` (`ep`, `att`): the kind and 32 random hexadecimal digits.
pub fn new_id(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp` (seconds);
/// none when `secret` is not one this mailer made.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix(PREFIX)?).ok()?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries (their test suites sign this
    /// payload with this secret and get this signature).
    #[test]
    fn signs_as_the_specification_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature =
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("a valid secret");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_is_32_random_bytes() {
        let a = new_secret();
        let key = BASE64
            .decode(a.strip_prefix(PREFIX).expect("the prefix"))
            .expect("base64");
        assert_eq!(key.len(), 32);
        assert_ne!(a, new_secret());
        assert!(sign("not-a-secret", "msg_1", 1, b"{}").is_none());
    }
}
