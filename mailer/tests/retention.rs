//! Erasure: `DELETE /recipients/{email}` erases every record and file of one address, however
//! spelt. Retention, which also times answers, runs alone in `tests/retention_latency.rs`;
//! both stand on `common/retention.rs`.

use crate::common::retention::{eml, post_many, record_status, spawn_with_retention};
use serde_json::json;

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
