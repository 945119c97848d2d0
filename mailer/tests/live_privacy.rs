//! `/live` shows no addresses to anonymous viewers and needs `mailer.live_token` when one is
//! set. That it never delays the sender's answer is `tests/live_latency.rs`.

use crate::common::{fast_options, node_package, spawn_app, spawn_with, test_config};
use crate::socketio_js::run_script;
use domain::Secret;
use serde_json::{Value, json};
use std::sync::Arc;
use testkit::smtp::{Reply, SmtpSink};

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

#[tokio::test]
async fn every_address_in_an_event_is_masked_as_a_whole_on_live_and_in_catch_up() {
    let test = "every_address_in_an_event_is_masked_as_a_whole_on_live_and_in_catch_up";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let smtp = SmtpSink::start();
    // A server whose refusal quotes the recipient and other addresses, one of them quoted.
    smtp.fail_next(
        3,
        Reply::NoMailboxSaying(
            "5.1.1 <{to}>: no such user; also tried \"jane secret\"@example.com and o'brien.secret@example.com.",
        ),
    );
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.smtp = Some(crate::common::smtp_config(smtp.addr()));
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
    let recipients = [
        ("bounce{jane.doe.secret}@example.com", "b"),
        ("o'brien.secret@example.com", "o"),
        ("`jane.secret`@example.com", "`"),
    ];
    let addresses = json!(recipients.map(|(address, _)| address)).to_string();

    let seen = run_script(
        &modules,
        "socketio_limits.js",
        &[&app.base, &app.token, "masking", &addresses],
    )
    .await;

    let live = seen["live_activity"].as_array().expect("the events heard");
    let items = seen["catch_up"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("catch-up answers items: {}", seen["catch_up"]));
    for (address, first) in recipients {
        let ack = &seen[&format!("ack_{address}")];
        assert_eq!(ack["status"], "accepted", "{address}: {ack}");
        let masked = json!({"email": format!("{first}\u{2026}@example.com")});
        for (source, events) in [("live", live), ("catch-up", items)] {
            let mine: Vec<&Value> = events.iter().filter(|e| e["id"] == ack["id"]).collect();
            assert!(!mine.is_empty(), "{source} shows {address}: {events:?}");
            for event in &mine {
                assert_eq!(event["to"], masked, "{source}: {event}");
            }
            let failed = mine
                .iter()
                .find(|e| e["status"] == "failed")
                .unwrap_or_else(|| panic!("{source} shows {address} failed: {mine:?}"));
            let error = failed["error"].as_str().unwrap_or("");
            assert!(
                error.contains(&format!("<{first}\u{2026}@example.com>"))
                    && error.contains("j\u{2026}@example.com and o\u{2026}@example.com."),
                "{source}: every address in the error is masked: {error}"
            );
        }
    }
    let everything = format!("{live:?} {items:?}");
    for part in ["secret", "jane", "brien", "Ada", "Lovelace"] {
        assert!(!everything.contains(part), "{part:?} shown: {everything}");
    }
}
