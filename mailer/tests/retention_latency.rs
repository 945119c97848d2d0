//! Retention: finished records older than `mailer.retention.records_days` go with their
//! `.eml` files while newer ones stay, and accepting is not held up meanwhile. Alone in its
//! binary, so that nothing else runs while it times answers.

mod common;

use common::mail_request;
use common::retention::{backdate, eml, post_many, record_status, spawn_with_retention};
use std::time::{Duration, Instant};

#[tokio::test]
async fn records_past_the_retention_go_with_their_files_and_accepting_is_not_held_up() {
    let app = spawn_with_retention().await;
    let old = post_many(&app, 3000, "old@example.com").await;
    let new = post_many(&app, 50, "new@example.com").await;
    app.drain().await;
    for id in old.iter().chain(&new).step_by(97) {
        assert!(eml(&app, id).exists(), "{id} was written");
    }
    // The same requests with nothing to delete, for comparison.
    let mut baseline = Vec::new();
    for _ in 0..100 {
        let sent = Instant::now();
        let (status, _) = app.post_mail(&mail_request("welcome", "en")).await;
        baseline.push(sent.elapsed());
        assert_eq!(status, 202);
    }
    baseline.sort();
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
        "retention: 3,000 records deleted in {} ms; {} requests accepted meanwhile, median {:.1} ms, slowest {:.1} ms (with nothing to delete: median {:.1} ms, slowest {:.1} ms)",
        started.elapsed().as_millis(),
        latencies.len(),
        median.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0,
        baseline[baseline.len() / 2].as_secs_f64() * 1000.0,
        baseline[baseline.len() - 1].as_secs_f64() * 1000.0
    ));
    // The job may hold an accept up by 50 ms at most; what the machine itself adds (the
    // slowest accept with nothing to delete) is not the job's.
    let noise = baseline[baseline.len() - 1];
    assert!(
        slowest < Duration::from_millis(50) + noise,
        "an accept took {slowest:?} while old records were deleted ({noise:?} without)"
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
