//! The suppression list's lookup key: an address is listed, looked up and removed by the
//! HMAC-SHA256 of its canonical form (`domain::Email::canonical`) under
//! `mailer.suppression_key`, in hex. The list can then keep an entry whose address was erased
//! (`DELETE /recipients/{email}`): the hash still stops every mail to that address, and
//! nothing in the database says which address it was without the key.
//!
//! The database keeps a check value of the key (the HMAC of a fixed label) in
//! `mail_settings`. A mailer started with another key while the list holds entries would
//! find none of them, and mail addresses that asked never to be mailed again, so it refuses
//! to start instead ([`secure`]). Entries written before the list was hashed (their key is
//! the canonical address in clear) are hashed at that same start.

use super::migration::{SETTINGS, SUPPRESSIONS};
use crate::error::MailError;
use domain::{Email, Secret};
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sha2::Sha256;

/// The label whose HMAC is the check value.
const CHECK_LABEL: &[u8] = b"facteur suppression key check";
/// The `mail_settings` row holding the check value.
const CHECK_NAME: &str = "suppression_key_check";

/// Computes lookup keys under `mailer.suppression_key`; cheap to clone.
#[derive(Clone)]
pub struct SuppressionKeys {
    /// Keyed once; each hash starts from a copy.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SuppressionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuppressionKeys(…)")
    }
}

impl SuppressionKeys {
    /// The keys under `secret`.
    pub fn new(secret: &Secret) -> Self {
        Self {
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// The lookup key of `email`, however it is spelt: every look-up, insert and removal of
    /// the list goes through here.
    pub fn lookup_key(&self, email: &Email) -> String {
        self.hash(email.canonical().as_bytes())
    }

    /// The value `mail_settings` keeps to recognise the key.
    fn check_value(&self) -> String {
        self.hash(CHECK_LABEL)
    }

    fn hash(&self, bytes: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        // Every request to the mailer looks its address up: a table, not a `format!` per byte.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(digest.len() * 2);
        for b in digest {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        hex
    }
}

/// Why the store will not open.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The database could not be reached, migrated or read.
    #[error(transparent)]
    Store(#[from] MailError),
    /// The suppression list is kept under another key than `mailer.suppression_key`.
    #[error(
        "invalid configuration: mailer.suppression_key: is not the key the suppression list in mailer.database is kept under \
         ({entries} entries would no longer be found, and those addresses would be mailed again): \
         set the key it was kept under"
    )]
    KeyMismatch {
        /// How many entries the list holds.
        entries: u64,
    },
}

/// At start, before any write: records the key's check value on the first start, refuses
/// another key while the list holds entries (on an empty list, another key is taken over
/// when `adopt_when_empty`, and refused otherwise), then hashes any entry still keyed by its
/// address in clear. Each step is idempotent, so a start that stops half-way is finished by
/// the next one.
pub(crate) async fn secure(
    db: &DatabaseConnection,
    keys: &SuppressionKeys,
    adopt_when_empty: bool,
) -> Result<(), ConnectError> {
    let check = keys.check_value();
    let first = Query::insert()
        .into_table(SETTINGS)
        .columns(["name", "value"])
        .values_panic([CHECK_NAME.into(), check.clone().into()])
        .on_conflict(OnConflict::column("name").do_nothing().to_owned())
        .to_owned();
    db.execute(&first).await.map_err(MailError::from)?;
    let read = Query::select()
        .column("value")
        .from(SETTINGS)
        .and_where(Expr::col("name").eq(CHECK_NAME))
        .to_owned();
    let stored: String = match db.query_one(&read).await.map_err(MailError::from)? {
        Some(row) => row.try_get("", "value").map_err(MailError::from)?,
        None => {
            return Err(MailError::Corrupt("the suppression key check is missing".into()).into());
        }
    };
    if stored != check {
        let entries = entries(db).await?;
        if entries > 0 || !adopt_when_empty {
            return Err(ConnectError::KeyMismatch { entries });
        }
        let adopt = Query::update()
            .table(SETTINGS)
            .value("value", check)
            .and_where(Expr::col("name").eq(CHECK_NAME))
            .to_owned();
        db.execute(&adopt).await.map_err(MailError::from)?;
        tracing::warn!(
            "mailer.suppression_key changed while the suppression list was empty: the list is now kept under the new key"
        );
    }
    hash_clear_keys(db, keys).await?;
    Ok(())
}

/// How many entries the list holds.
async fn entries(db: &DatabaseConnection) -> Result<u64, MailError> {
    let count = Query::select()
        .expr_as(Expr::col("email_key").count(), "n")
        .from(SUPPRESSIONS)
        .to_owned();
    let n: i64 = match db.query_one(&count).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Replaces every key that is still a canonical address (it holds `@`, which a hex hash never
/// does) by its hash, in one transaction. A clear entry whose address is listed hashed
/// already goes: the hashed one is kept.
async fn hash_clear_keys(db: &DatabaseConnection, keys: &SuppressionKeys) -> Result<(), MailError> {
    let clear = Query::select()
        .column("email_key")
        .from(SUPPRESSIONS)
        .and_where(Expr::col("email_key").like("%@%"))
        .to_owned();
    let rows = db.query_all(&clear).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    for row in rows {
        let key: String = row.try_get("", "email_key")?;
        // The migration that made keys canonical stored each as `Email::canonical` gave it
        // (or, for an address that no longer parses, its lower case).
        let hashed = match Email::parse(key.as_str()) {
            Ok(email) => keys.lookup_key(&email),
            Err(_) => keys.hash(key.as_bytes()),
        };
        let listed = Query::select()
            .column("email_key")
            .from(SUPPRESSIONS)
            .and_where(Expr::col("email_key").eq(hashed.as_str()))
            .to_owned();
        if txn.query_one(&listed).await?.is_some() {
            let duplicate = Query::delete()
                .from_table(SUPPRESSIONS)
                .and_where(Expr::col("email_key").eq(key))
                .to_owned();
            txn.execute(&duplicate).await?;
        } else {
            let hash = Query::update()
                .table(SUPPRESSIONS)
                .value("email_key", hashed)
                .and_where(Expr::col("email_key").eq(key))
                .to_owned();
            txn.execute(&hash).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SuppressionKeys;
    use domain::Secret;

    /// RFC 4231, test case 2: the key is HMAC-SHA256 in lowercase hex.
    #[test]
    fn the_key_is_hmac_sha256_in_lowercase_hex() {
        let keys = SuppressionKeys::new(&Secret::new("Jefe"));
        assert_eq!(
            keys.hash(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
