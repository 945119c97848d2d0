//! Retention and erasure: finished records older than `mailer.retention.records_days` go with
//! their `.eml` files while newer ones stay, without holding up accepting; and
//! `DELETE /recipients/{email}` erases every record and file of one address, however spelt.

use crate::common::{TestApp, fast_options, mail_request, spawn_with, test_config};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A mailer writing `.eml` files whose retention job runs every 100 ms.
async fn spawn_with_retention() -> TestApp {
    let dir = TempDir::new().expect("a temporary directory");
    let config = test_config(&dir);
    let mut options = fast_options();
    options.retention.every = Duration::from_millis(100);
    spawn_with(config, options, Arc::new(dir)).await
}

/// Posts `count` requests to `to`, 32 at a time, and returns their ids.
async fn post_many(app: &TestApp, count: usize, to: &str) -> Vec<String> {
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

fn eml(app: &TestApp, id: &str) -> std::path::PathBuf {
    app.outbox().join(format!("{id}.eml"))
}

/// Moves the records `ids` back in time by `days`, as if they had been stored then.
fn backdate(app: &TestApp, ids: &[String], days: i64) {
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

async fn record_status(app: &TestApp, id: &str) -> u16 {
    app.get(&format!("/mails/{id}")).await.0
}

#[tokio::test]
async fn records_past_the_retention_go_with_their_files_and_accepting_is_not_held_up() {
    let app = spawn_with_retention().await;
    let old = post_many(&app, 3000, "old@example.com").await;
    let new = post_many(&app, 50, "new@example.com").await;
    app.drain().await;
    for id in old.iter().chain(&new).step_by(97) {
        assert!(eml(&app, id).exists(), "{id} was written");
    }
    // One day past the default 400 for the old ones, one day short for some of the new.
    backdate(&app, &old, 401);
    backdate(&app, &new[..10], 399);

    // Requests keep arriving while the job deletes: each is timed until the old are gone.
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut accepted_meanwhile = Vec::new();
    loop {
        let request = mail_request("welcome", "en");
        let sent = Instant::now();
        let (status, _) = app.post_mail(&request).await;
        latencies.push(sent.elapsed());
        assert_eq!(status, 202);
        accepted_meanwhile.push(request["id"].as_str().unwrap().to_string());
        if record_status(&app, &old[old.len() - 1]).await == 404
            && record_status(&app, &old[0]).await == 404
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the old records are still there after 30 s"
        );
    }
    app.drain().await;
    latencies.sort();
    let slowest = *latencies.last().expect("some requests");
    let median = latencies[latencies.len() / 2];
    testkit::skip::report(&format!(
        "retention: 3,000 records deleted in {} ms; {} requests accepted meanwhile, median {:.1} ms, slowest {:.1} ms",
        started.elapsed().as_millis(),
        latencies.len(),
        median.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0
    ));
    assert!(
        slowest < Duration::from_millis(50),
        "an accept took {slowest:?} while old records were deleted"
    );

    for id in &old {
        assert_eq!(
            record_status(&app, id).await,
            404,
            "{id} is past the retention"
        );
        assert!(!eml(&app, id).exists(), "{id}.eml went with its record");
    }
    for id in new.iter().chain(&accepted_meanwhile) {
        assert_eq!(
            record_status(&app, id).await,
            200,
            "{id} is within the retention"
        );
        assert!(eml(&app, id).exists(), "{id}.eml stays");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("records_deleted_total{reason=\"age\"} 3000"),
        "{metrics}"
    );
}

#[tokio::test]
async fn erasing_a_recipient_removes_every_record_and_file_of_the_address_however_spelt() {
    let app = spawn_with_retention().await;
    let mut ada = Vec::new();
    for spelling in [
        "Ada@Example.COM",
        "ada@example.com",
        "ADA@xn--exmple-cua.com",
    ] {
        ada.extend(post_many(&app, 3, spelling).await);
    }
    // The same address as `ADA@exämple.com`, written in its Unicode form.
    ada.extend(post_many(&app, 2, "ada@exämple.com").await);
    let bob = post_many(&app, 3, "bob@example.com").await;
    let (status, _) = app
        .post(
            "/suppressions",
            &json!({"email": "ada@example.com", "reason": "asked"}),
        )
        .await;
    assert_eq!(status, 201);
    app.drain().await;
    for id in ada.iter().chain(&bob) {
        assert!(eml(&app, id).exists(), "{id} was written");
    }

    // Without the token: refused, nothing erased.
    let refused = app
        .http
        .delete(format!("{}/recipients/ada%40example.com", app.base))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(refused.status(), 401);
    let (status, answer) = app.delete("/recipients/not-an-address").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_email");

    let (status, answer) = app.delete("/recipients/aDa%40EXAMPLE.com").await;
    assert_eq!(status, 200, "{answer}");
    // Example.COM and example.com are one domain; exämple.com (xn--exmple-cua.com) another.
    assert_eq!(answer, json!({"erased": 6}));
    let (status, answer) = app.delete("/recipients/ada%40ex%C3%A4mple.com").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"erased": 5}),
        "the Unicode and the xn-- spellings"
    );

    for id in &ada {
        assert_eq!(record_status(&app, id).await, 404, "{id} is erased");
        assert!(!eml(&app, id).exists(), "{id}.eml is erased");
    }
    for id in &bob {
        assert_eq!(
            record_status(&app, id).await,
            200,
            "{id} is another address"
        );
        assert!(eml(&app, id).exists());
    }
    // Erasing again finds nothing; the suppression entry stays, so the address is not mailed.
    let (_, answer) = app.delete("/recipients/ada%40example.com").await;
    assert_eq!(answer, json!({"erased": 0}));
    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 1, "{list}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("records_deleted_total{reason=\"erasure\"} 11"),
        "{metrics}"
    );
}
