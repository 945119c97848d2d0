//! Retention and erasure tests' helpers: a mailer whose retention job runs often, requests
//! in bulk, and records moved back in time.

use super::{TestApp, fast_options, mail_request, spawn_with, test_config};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A mailer writing `.eml` files whose retention job runs every 100 ms.
pub async fn spawn_with_retention() -> TestApp {
    let dir = TempDir::new().expect("a temporary directory");
    let config = test_config(&dir);
    let mut options = fast_options();
    options.retention.every = Duration::from_millis(100);
    spawn_with(config, options, Arc::new(dir)).await
}

/// Posts `count` requests to `to`, 32 at a time, and returns their ids.
pub async fn post_many(app: &TestApp, count: usize, to: &str) -> Vec<String> {
    let requests: Vec<Value> = (0..count)
        .map(|_| {
            let mut request = mail_request("welcome", "en");
            request["to"] = json!({"email": to, "name": "Ada"});
            request
        })
        .collect();
    futures_util::stream::iter(requests.iter())
        .map(|request| async move {
            let (status, answer) = app.post_mail(request).await;
            assert_eq!(status, 202, "{answer}");
            request["id"].as_str().expect("an id").to_string()
        })
        .buffer_unordered(32)
        .collect()
        .await
}

pub fn eml(app: &TestApp, id: &str) -> std::path::PathBuf {
    app.outbox().join(format!("{id}.eml"))
}

/// Moves the records `ids` back in time by `days`, as if they had been stored then.
pub fn backdate(app: &TestApp, ids: &[String], days: i64) {
    let path = app.dir.path().join("mailer.db");
    let mut db = rusqlite::Connection::open(path).expect("the store's file");
    db.busy_timeout(Duration::from_secs(10))
        .expect("a busy timeout");
    let tx = db.transaction().expect("a transaction");
    {
        let mut update = tx
            .prepare("UPDATE mail_deliveries SET created_at = created_at - ?1 WHERE id = ?2")
            .expect("the update");
        for id in ids {
            update
                .execute(rusqlite::params![days * 24 * 60 * 60 * 1000, id])
                .expect("backdated");
        }
    }
    tx.commit().expect("committed");
}

pub async fn record_status(app: &TestApp, id: &str) -> u16 {
    app.get(&format!("/mails/{id}")).await.0
}
