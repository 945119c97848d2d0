//! The transactional outbox: a change is never saved without its mail request, each request
//! is published once, and a failed publish is retried until it goes through.

use crate::helpers::{ADMIN, Backend, ada, spawn_app};
use crate::on_both_databases;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;
use std::collections::HashSet;

on_both_databases!(
    when_the_outbox_insert_fails_the_user_change_is_not_saved_either,
    the_relay_publishes_each_row_once_with_two_instances_on_one_database,
    after_a_transport_failure_the_relay_retries_and_publishes_later,
);

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("a count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

async fn when_the_outbox_insert_fails_the_user_change_is_not_saved_either(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    app.transport.wait_for(1).await;
    let db = Database::connect(&app.database_url)
        .await
        .expect("a second connection");
    // With the table renamed, every outbox insert fails (the relay's passes fail too).
    db.execute_unprepared("ALTER TABLE outbox RENAME TO outbox_away")
        .await
        .expect("rename");

    let created = app.post("/users", &ada("bob")).await;
    let patched = app
        .patch(&path, Some(ADMIN), &json!({"first_name": "Augusta"}))
        .await;
    let deleted = app.delete(&path, Some(ADMIN)).await;

    created.assert_error(500, "internal");
    patched.assert_error(500, "internal");
    deleted.assert_error(500, "internal");
    assert!(
        !created.text.contains("outbox"),
        "internal details leaked: {}",
        created.text
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM users WHERE login = 'bob'").await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM users WHERE first_name = 'Augusta'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM users WHERE login = 'ada'").await,
        1
    );

    db.execute_unprepared("ALTER TABLE outbox_away RENAME TO outbox")
        .await
        .expect("rename back");
    app.post("/users", &ada("bob")).await.assert_status(201);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox").await, 2);
    db.close().await.expect("close");
}

async fn the_relay_publishes_each_row_once_with_two_instances_on_one_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.second_instance().await;
    // Hold everything back so that both relays find a backlog to share.
    app.transport.fail_next(usize::MAX);
    let bodies: Vec<_> = (0..40).map(|i| ada(&format!("user{i:02}"))).collect();
    let creates: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| if i % 2 == 0 { &app } else { &other }.post("/users", body))
        .collect();
    for response in futures_util::future::join_all(creates).await {
        response.assert_status(201);
    }

    app.transport.fail_next(0);
    // Both background relays run, and two more passes race them from here.
    let (a, b) = tokio::join!(app.relay.relay_once(), other.relay.relay_once());
    a.expect("a pass");
    b.expect("a pass");
    app.transport.wait_for(40).await;
    app.wait_until_outbox_empty().await;
    app.relay_until_idle().await;
    other.relay_until_idle().await;

    let published = app.transport.published();
    let ids: HashSet<_> = published.iter().map(|r| r.id).collect();
    assert_eq!(published.len(), 40, "some rows were published twice");
    assert_eq!(ids.len(), 40);
    let backlog = app.relay.backlog().await.expect("backlog");
    assert_eq!(backlog.pending, 0);
    let db = Database::connect(&app.database_url).await.expect("connect");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM outbox WHERE published_at_ms IS NOT NULL"
        )
        .await,
        40
    );
    db.close().await.expect("close");
    other.stop().await;
}

async fn after_a_transport_failure_the_relay_retries_and_publishes_later(backend: Backend) {
    let app = spawn_app(backend).await;
    app.transport.fail_next(3);

    app.create_user("ada").await;

    let published = app.transport.wait_for(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].template.as_str(), "welcome");
    assert_eq!(app.transport.failures(), 3);
    app.wait_until_outbox_empty().await;
    assert_eq!(app.transport.published().len(), 1, "published once only");
    let db = Database::connect(&app.database_url).await.expect("connect");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox WHERE attempts = 3 AND last_error IS NOT NULL AND published_at_ms IS NOT NULL").await, 1);
    db.close().await.expect("close");
    let health = app.get("/health", None).await;
    assert_eq!(health.json["outbox"]["pending"], 0);
    let metrics = app.get("/metrics", None).await;
    assert!(
        metrics
            .text
            .contains(r#"outbox_publish_failures_total{transport="socketio"} 3"#),
        "{}",
        metrics.text
    );
}
