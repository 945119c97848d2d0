//! Argon2id password hashing, off the async workers and bounded in concurrency.
//!
//! Each hash takes `M_COST_KIB` of memory and tens of milliseconds of one core. Hashes run
//! on tokio's blocking pool, and a semaphore with one permit per core bounds how many run at
//! once, so memory stays at `cores × M_COST_KIB` however many requests arrive, and the async
//! workers keep serving other routes meanwhile.
//!
//! Parameters: m = 7168 KiB, t = 5, p = 1, one of the OWASP-listed Argon2id settings (the one
//! with the least memory). Verification reads the parameters from the stored PHC string, so
//! changing them here does not lock out existing users.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::Password;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Memory cost in KiB.
const M_COST_KIB: u32 = 7168;
/// Passes over the memory.
const T_COST: u32 = 5;
/// Lanes.
const P_COST: u32 = 1;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub(crate) struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password with the current parameters. Logins that match no user
    /// are verified against it, so an unknown login costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher, allowing `concurrency` hashes at once.
    pub async fn new(concurrency: usize) -> anyhow::Result<Self> {
        let mut random = [0u8; 24];
        rand::fill(&mut random);
        let dummy: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dummy_hash = tokio::task::spawn_blocking(move || hash_now(dummy.as_bytes())).await??;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || hash_now(password.expose().as_bytes())).await?
    }

    /// True when `password` matches `stored`. With no stored hash (unknown login), the
    /// password is checked against the dummy hash and the answer is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches =
            tokio::task::spawn_blocking(move || verify_now(password.as_bytes(), &phc)).await??;
        Ok(known && matches)
    }
}

fn hash_now(password: &[u8]) -> anyhow::Result<String> {
    let hash = argon2()?
        .hash_password(password)
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))?;
    Ok(hash.to_string())
}

fn verify_now(password: &[u8], phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| anyhow::anyhow!("a stored password hash is malformed: {e}"))?;
    // The parameters come from the PHC string, not from `argon2()`.
    Ok(argon2()?.verify_password(password, &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(1).await.unwrap();
        let phc = hasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        assert!(
            hasher
                .verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(phc))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
    }
}
