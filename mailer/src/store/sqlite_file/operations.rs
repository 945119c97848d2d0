//! The SQLite writer's writes that are not a mail's own progress: the suppression list (read
//! at each insert, written by a refused recipient and by operators) and an operator's rare
//! writes ([`Operation`]). Each runs inside the batch's transaction, one row per statement so
//! that each change gets a cursor of its own.

use super::run::{execute, query, query_one};
use crate::error::MailError;
use crate::store::migration::{drop_outbox_triggers, outbox_triggers};
use crate::store::rows::{Cursor, NewSuppression, Operated, Operation};
use crate::store::statements::{self, Numbering};
use crate::store::suppression_key::SuppressionKeys;
use crate::store::webhooks::{self, Statement, WebhookWrite};
use rusqlite::Transaction;
use sea_orm::DbBackend;

/// A statement that could not be built, as the error that aborts the batch.
pub(super) fn unbuilt(e: MailError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// Why the address of lookup key `key` is on the suppression list, if it is.
pub(super) fn suppression_reason(
    tx: &Transaction<'_>,
    key: &str,
) -> rusqlite::Result<Option<String>> {
    let reasons = query_one(tx, &statements::suppression_reason(key), |row| {
        row.get::<_, String>(1)
    })?;
    Ok(reasons.into_iter().next())
}

/// Adds `suppression` unless its address is listed; true when it was new.
pub(super) fn add_suppression(
    tx: &Transaction<'_>,
    keys: &SuppressionKeys,
    suppression: &NewSuppression,
) -> rusqlite::Result<bool> {
    let key = keys.lookup_key(&suppression.email);
    let q = statements::add_suppression(suppression, &key).map_err(unbuilt)?;
    Ok(execute(tx, &q)? == 1)
}

/// Makes `operation`, numbering each change with `next_cursor`; returns what it did and the
/// rows it wrote.
pub(super) fn operate(
    tx: &Transaction<'_>,
    keys: &SuppressionKeys,
    operation: &Operation,
    next_cursor: &mut impl FnMut() -> i64,
) -> rusqlite::Result<(Operated, u64)> {
    match operation {
        Operation::Requeue(ids, now, sender) => {
            let mut moved = Vec::new();
            for id in ids {
                let q = statements::requeue(
                    std::slice::from_ref(id),
                    *now,
                    sender.as_deref(),
                    Numbering::Given(next_cursor()),
                );
                if !query(tx, &q, |_| Ok(()))?.is_empty() {
                    moved.push(*id);
                }
            }
            let n = moved.len() as u64;
            Ok((Operated::Moved(moved), n))
        }
        Operation::Cancel(id, now) => {
            let q = statements::cancel(*id, *now, Numbering::Given(next_cursor()));
            let n = execute(tx, &q)?;
            Ok((Operated::Changed(n == 1), n as u64))
        }
        Operation::Suppress(suppression) => {
            let added = add_suppression(tx, keys, suppression)?;
            Ok((Operated::Changed(added), u64::from(added)))
        }
        Operation::Unsuppress(key) => {
            let n = execute(tx, &statements::remove_suppression(key))?;
            Ok((Operated::Changed(n == 1), n as u64))
        }
        Operation::ForgetAddress(key) => {
            let n = execute(tx, &statements::forget_suppressed_address(key))?;
            Ok((Operated::Changed(n == 1), n as u64))
        }
        // A deletion numbers nothing: there is no row left to show a cursor.
        Operation::Delete(ids) if ids.is_empty() => Ok((Operated::Deleted(0), 0)),
        Operation::Delete(ids) => {
            let n = execute(tx, &statements::delete_deliveries(ids))? as u64;
            Ok((Operated::Deleted(n), n))
        }
        Operation::Report(report) => {
            let mut rows =
                execute(tx, &statements::insert_report(report).map_err(unbuilt)?)? as u64;
            let mut changed = None;
            if let Some(status) = report.kind.new_status() {
                let cursor = next_cursor();
                let q = statements::mark_reported(report, status, Numbering::Given(cursor));
                if !query(tx, &q, |_| Ok(()))?.is_empty() {
                    changed = Some(Cursor(cursor));
                    rows += 1;
                    if let Some(suppression) = &report.suppress {
                        rows += u64::from(add_suppression(tx, keys, suppression)?);
                    }
                }
            }
            Ok((Operated::Reported(changed), rows))
        }
        Operation::Webhook(WebhookWrite::Claim(ids, now, until)) => {
            let claimed = query(tx, &webhooks::claim(ids, *now, *until), |row| {
                row.get::<_, String>(0)
            })?;
            let n = claimed.len() as u64;
            Ok((Operated::Claimed(claimed), n))
        }
        Operation::Webhook(write) => {
            let mut first = None;
            let mut rows = 0u64;
            for statement in webhooks::statements(write).map_err(unbuilt)? {
                let n = match &statement {
                    Statement::Insert(q) => execute(tx, q)?,
                    Statement::Update(q) => execute(tx, q)?,
                    Statement::Delete(q) => execute(tx, q)?,
                    Statement::LockEndpoints => continue,
                    Statement::OutboxTriggers => {
                        tx.execute_batch(&outbox_triggers(DbBackend::Sqlite))?;
                        continue;
                    }
                    Statement::DropOutboxTriggersIfUnused => {
                        let left = query(tx, &webhooks::endpoint_count_statement(), |row| {
                            row.get::<_, i64>(0)
                        })?;
                        if left.first().copied().unwrap_or(0) == 0 {
                            tx.execute_batch(&drop_outbox_triggers(DbBackend::Sqlite))?;
                        }
                        continue;
                    }
                } as u64;
                first.get_or_insert(n);
                rows += n;
            }
            Ok((Operated::Changed(first.unwrap_or(0) > 0), rows))
        }
    }
}
