//! socket.io tests with the official JavaScript client (`socket.io-client` v4, run by
//! `node`) against the real mailer.

use crate::common::{node_package, spawn_app};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Runs mailer/tests/js/`script` with `args` under node (modules from `modules`), within 60 s,
/// and returns what it printed; fails the test when it fails.
pub async fn run_node(modules: &Path, script: &str, args: &[&str]) -> String {
    testkit::node::run(modules, &format!("mailer/tests/js/{script}"), args).await
}

/// [`run_node`], for scripts that print one `{"name", "value"}` line per observation.
pub async fn run_script(modules: &Path, script: &str, args: &[&str]) -> HashMap<String, Value> {
    run_node(modules, script, args)
        .await
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["name"].as_str().unwrap_or("").to_string(),
                v["value"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_official_socket_io_client_sees_every_event_the_contract_lists() {
    let test = "the_official_socket_io_client_sees_every_event_the_contract_lists";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let app = spawn_app().await;

    let seen = run_script(&modules, "socketio_scenarios.js", &[&app.base, &app.token]).await;
    let id = seen["request_id"].as_str().unwrap().to_string();

    assert!(
        seen["wrong_token"]
            .as_str()
            .unwrap()
            .contains("unauthorized"),
        "{:?}",
        seen["wrong_token"]
    );
    assert!(seen["no_token"].as_str().unwrap().contains("unauthorized"));
    assert_eq!(seen["service_connect"], Value::Null);
    assert_eq!(seen["live_connect"], Value::Null);
    assert_eq!(seen["join"], json!({"ok": true}));
    assert_eq!(seen["join_bad_room"]["ok"], false);
    assert_eq!(seen["join_bad_room"]["error"], "invalid_room");
    assert!(
        seen["join_bad_room"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a room")),
        "{}",
        seen["join_bad_room"]
    );
    assert_eq!(
        seen["ack_accepted"],
        json!({"id": id, "status": "accepted"})
    );
    assert_eq!(
        seen["ack_duplicate"],
        json!({"id": id, "status": "duplicate"})
    );
    assert_eq!(
        seen["sender_mail_status"],
        json!({"id": id, "status": "sent", "attempts": 1})
    );
    assert_eq!(
        seen["room_mail_status"],
        json!({"id": id, "status": "sent", "attempts": 1})
    );
    assert_eq!(seen["live_activity_queued"]["template"], "welcome");
    assert_eq!(
        seen["live_activity_queued"]["to"],
        json!({"email": "a\u{2026}@example.com"}),
        "anonymous /live viewers see a masked address and no name"
    );
    assert!(seen["live_activity_sent"]["at"].is_string());
    assert_eq!(seen["get_mail"]["id"], id.as_str());
    assert_eq!(seen["get_mail"]["status"], "sent");
    assert_eq!(
        seen["get_mail_unknown"],
        json!({"error": "not_found", "message": "No mail request has this id."})
    );
    for bad in [
        "bad_missing_field",
        "bad_wrong_type",
        "bad_unknown_template",
        "bad_huge",
        "bad_string",
        "bad_array",
        "bad_number",
        "bad_hidden_email",
        "bad_hidden_name",
    ] {
        let answer = &seen[bad];
        assert_eq!(answer["status"], "rejected", "{bad}: {answer}");
        let error = answer["error"].as_str().unwrap_or("");
        assert!(
            !error.is_empty() && !error.contains('\n'),
            "{bad}: one sentence, got {error:?}"
        );
    }
    assert!(
        seen["bad_missing_field"]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `to`")
    );
    for (bad, starts) in [
        (
            "bad_hidden_email",
            "to.email: is not a valid address: it holds a control or format character (U+200B)",
        ),
        (
            "bad_hidden_name",
            "to.name: must not contain control, format or line-separator characters (found U+202E)",
        ),
    ] {
        let error = seen[bad]["error"].as_str().unwrap_or_default();
        assert_eq!(error, starts, "{bad}");
    }
    assert!(
        seen["bad_unknown_template"]["error"]
            .as_str()
            .unwrap()
            .contains("unknown template")
    );
    assert!(
        seen["bad_huge"]["error"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
    assert!(
        seen["bad_string"]["error"]
            .as_str()
            .unwrap()
            .contains("a string")
    );
    assert_eq!(seen["still_connected"], true);
    assert_eq!(seen["ack_after_bad_input"]["status"], "accepted");
    let reason = seen["oversize_disconnect"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("transport"),
        "a message over 128 KiB closes the connection: {:?}",
        seen["oversize_disconnect"]
    );
    assert_eq!(seen["watcher_still_connected"], true);
    // Events are built only while a socket listens: the last one left still hears them.
    assert_eq!(seen["rest_status"], 202);
    assert_eq!(
        seen["last_socket_activity"]["id"], seen["rest_request_id"],
        "{:?}",
        seen["last_socket_activity"]
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mail_requests_total{door=\"socketio\",status=\"accepted\"} 2"),
        "{metrics}"
    );
}
