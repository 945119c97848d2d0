//! The SQLite writer's statements for what is not a mail's own progress: the suppression
//! list (read at each insert, written by a refused recipient and by operators) and an
//! operator's rare writes ([`Operation`]). Each runs inside the batch's transaction.

use crate::store::rows::{NewSuppression, Operated, Operation, to_millis};
use rusqlite::{OptionalExtension, Transaction, params};

const SUPPRESSION_REASON: &str = "SELECT reason FROM mail_suppressions WHERE email_key = ?1";
/// Listed already under any spelling: nothing changes, the first entry stays.
const ADD_SUPPRESSION: &str = "INSERT INTO mail_suppressions (email, email_key, reason, \
     created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
const REMOVE_SUPPRESSION: &str = "DELETE FROM mail_suppressions WHERE email_key = ?1";
/// Only a `failed` delivery moves: a copy that raced with another retry changes nothing.
/// A retry from a socket makes that socket the one that hears the mail's next statuses.
const REQUEUE: &str = "UPDATE mail_deliveries SET status = 'queued', next_attempt_at = ?2, \
     cursor = ?3, sender = coalesce(?4, sender) WHERE id = ?1 AND status = 'failed'";
/// The claim needs the same statuses, so of a cancel and a claim exactly one finds the row.
/// A cancelled mail keeps no `vars`, as a sent one.
const CANCEL: &str = "UPDATE mail_deliveries SET status = 'cancelled', vars = '{}', \
     next_attempt_at = ?2, cursor = ?3 WHERE id = ?1 AND status IN ('queued', 'retrying')";

/// Why the address of canonical key `key` is on the suppression list, if it is.
pub(super) fn suppression_reason(
    tx: &Transaction<'_>,
    key: &str,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(SUPPRESSION_REASON)?
        .query_row(params![key], |row| row.get(0))
        .optional()
}

/// Adds `suppression` unless its address is listed; true when it was new.
pub(super) fn add_suppression(
    tx: &Transaction<'_>,
    suppression: &NewSuppression,
) -> rusqlite::Result<bool> {
    let added = tx.prepare_cached(ADD_SUPPRESSION)?.execute(params![
        suppression.email,
        suppression.key,
        suppression.reason,
        to_millis(suppression.at),
    ])?;
    Ok(added == 1)
}

/// Makes `operation`, numbering each change with `next_cursor`; returns what it did and the
/// rows it wrote.
pub(super) fn operate(
    tx: &Transaction<'_>,
    operation: &Operation,
    next_cursor: &mut impl FnMut() -> i64,
) -> rusqlite::Result<(Operated, u64)> {
    match operation {
        Operation::Requeue(ids, now, sender) => {
            let mut statement = tx.prepare_cached(REQUEUE)?;
            let mut moved = Vec::new();
            for id in ids {
                let changed = statement.execute(params![
                    id.to_string(),
                    to_millis(*now),
                    next_cursor(),
                    sender
                ])?;
                if changed == 1 {
                    moved.push(*id);
                }
            }
            let n = moved.len() as u64;
            Ok((Operated::Moved(moved), n))
        }
        Operation::Cancel(id, now) => {
            let n = tx.prepare_cached(CANCEL)?.execute(params![
                id.to_string(),
                to_millis(*now),
                next_cursor()
            ])?;
            Ok((Operated::Changed(n == 1), n as u64))
        }
        Operation::Suppress(suppression) => {
            let added = add_suppression(tx, suppression)?;
            Ok((Operated::Changed(added), u64::from(added)))
        }
        Operation::Unsuppress(key) => {
            let n = tx
                .prepare_cached(REMOVE_SUPPRESSION)?
                .execute(params![key])?;
            Ok((Operated::Changed(n == 1), n as u64))
        }
    }
}
