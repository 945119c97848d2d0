//! `/live` shows no addresses to anonymous viewers and needs `mailer.live_token` when one is
//! set. That it never delays the sender's answer is `tests/live_latency.rs`.

use crate::common::{fast_options, node_package, spawn_app, spawn_with, test_config};
use crate::socketio_js::run_script;
use domain::Secret;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn anonymous_live_viewers_see_a_masked_address_and_no_name() {
    let test = "anonymous_live_viewers_see_a_masked_address_and_no_name";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let app = spawn_app().await;

    let seen = run_script(
        &modules,
        "socketio_limits.js",
        &[&app.base, &app.token, "anonymous"],
    )
    .await;

    assert_eq!(seen["live_connect"], serde_json::Value::Null);
    assert_eq!(seen["ack"]["status"], "accepted");
    assert_eq!(
        seen["live_activity"]["to"],
        json!({"email": "a\u{2026}@example.com"})
    );
    assert_eq!(
        seen["service_activity"]["to"],
        json!({"email": "ada@example.com", "name": "Ada Lovelace"}),
        "service clients on / see the whole recipient"
    );
}

#[tokio::test]
async fn with_a_live_token_live_needs_it_and_shows_whole_recipients() {
    let test = "with_a_live_token_live_needs_it_and_shows_whole_recipients";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    let live_token = format!("live-{}", uuid::Uuid::new_v4());
    config.mailer.live_token = Some(Secret::new(live_token.clone()));
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;

    let seen = run_script(
        &modules,
        "socketio_limits.js",
        &[&app.base, &app.token, "live_token", &live_token],
    )
    .await;

    for refused in ["no_token", "wrong_token"] {
        let error = seen[refused].as_str().unwrap_or("");
        assert!(
            error.contains("live token"),
            "{refused}: {:?}",
            seen[refused]
        );
    }
    assert_eq!(seen["live_connect"], serde_json::Value::Null);
    assert_eq!(
        seen["live_activity"]["to"],
        json!({"email": "ada@example.com", "name": "Ada Lovelace"})
    );
}
