//! `/live`'s `catch-up` with the official socket.io client: the latest 50 at open, every
//! change after a cursor 500 at a time and oldest first, masked recipients, and its bounds
//! (one a second per socket; a payload that is not `{after?: cursor}`, deep ones included).

use crate::common::raw_ws::RawWs;
use crate::common::{mail_request, node_package, spawn_app};
use crate::socketio_js::run_script;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn catch_up_answers_the_latest_then_every_change_in_pages_and_is_bounded_per_socket() {
    let test = "catch_up_answers_the_latest_then_every_change_in_pages_and_is_bounded_per_socket";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let app = spawn_app().await;
    let mut ids = Vec::new();
    // Mails sent side by side can end in another order than they were asked in: the last 50
    // are asked for only once the 570 before them are sent, so that theirs are the latest
    // changes.
    for batch in [570, 50] {
        for _ in 0..batch {
            let request = mail_request("welcome", "en");
            ids.push(request["id"].as_str().unwrap().to_string());
            assert_eq!(app.post_mail(&request).await.0, 202);
        }
        for id in &ids {
            app.wait_for_status(id, "sent", Duration::from_secs(60))
                .await;
        }
    }

    let seen = run_script(&modules, "catch_up.js", &[&app.base]).await;

    let latest = &seen["latest"];
    assert_eq!(latest["count"], 50, "the latest 50: {latest}");
    let latest_ids: Vec<&str> = latest["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let newest: Vec<&str> = ids[ids.len() - 50..].iter().map(String::as_str).collect();
    assert_eq!(
        latest_ids.iter().copied().collect::<HashSet<_>>(),
        newest.iter().copied().collect::<HashSet<_>>(),
        "the latest 50 are the 50 mails sent last"
    );
    assert_eq!(latest["ordered"], true, "oldest first: {latest}");
    assert!(
        latest["emails"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e == "a\u{2026}@example.com"),
        "anonymous viewers get masked recipients: {latest}"
    );

    let pages = seen["pages"].as_array().unwrap();
    let counts: Vec<u64> = pages.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(
        counts,
        vec![500, 120],
        "620 changes, 500 at a time: {pages:?}"
    );
    let mut all = Vec::new();
    for page in pages {
        assert_eq!(page["ordered"], true, "each page oldest first: {page}");
        assert_eq!(
            page["cursor"], page["last"],
            "a page's cursor is its last item's"
        );
        all.extend(
            page["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    assert!(
        pages[0]["last"].as_str() < pages[1]["first"].as_str(),
        "pages follow each other"
    );
    assert_eq!(
        all.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>(),
        "every delivery once, in its latest state"
    );
    assert_eq!(all.len(), ids.len());

    assert_eq!(seen["nothing"], 50, "no argument: the latest 50");
    assert_eq!(seen["null"], 50, "null: the latest 50");

    let burst = seen["burst"].as_array().unwrap();
    let answered = burst.iter().filter(|b| b.as_u64() == Some(500)).count();
    let busy = burst.iter().filter(|b| b.as_str() == Some("busy")).count();
    assert_eq!(
        answered, 1,
        "one of ten within a second is answered: {burst:?}"
    );
    assert_eq!(busy, 9, "the others are told to come back: {burst:?}");
    assert_eq!(
        seen["bad"],
        serde_json::json!(vec!["invalid_cursor"; 6]),
        "{}",
        seen["bad_messages"]
    );
    for message in seen["bad_messages"].as_array().unwrap() {
        let message = message.as_str().unwrap_or("");
        assert!(
            message.starts_with("catch-up takes") && message.len() < 300,
            "{message}"
        );
    }
    assert_eq!(seen["after_bad"], 50, "the socket is still served");
    assert_eq!(seen["connected"], true);
}

/// Reads frames from `ws` until the ack of `id` on `/live`, answering pings.
async fn live_ack(ws: &mut RawWs, id: u32) -> serde_json::Value {
    let prefix = format!("43/live,{id}");
    loop {
        let frame = ws.read_text().await.expect("a frame from the mailer");
        if frame == "2" {
            ws.send_text(b"3").await.expect("a pong");
        } else if let Some(args) = frame.strip_prefix(&prefix) {
            let args: serde_json::Value = serde_json::from_str(args).expect("ack arguments");
            return args[0].clone();
        }
    }
}

#[tokio::test]
async fn a_catch_up_nested_5000_deep_is_an_invalid_cursor_and_the_socket_is_still_served() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut ws = RawWs::connect(&addr).await.expect("a websocket");
    assert!(ws.read_text().await.expect("OPEN").starts_with('0'));
    ws.send_text(b"40/live,").await.expect("CONNECT");
    let connected = loop {
        let frame = ws.read_text().await.expect("CONNECT");
        if frame == "2" {
            ws.send_text(b"3").await.expect("a pong");
        } else {
            break frame;
        }
    };
    assert!(connected.starts_with("40/live,"), "{connected}");
    let deep = "[".repeat(5000) + &"]".repeat(5000);

    for (id, payload) in [(1, deep.clone()), (2, format!("{{\"after\":{deep}}}"))] {
        let event = format!("42/live,{id}[\"catch-up\",{payload}]");
        ws.send_text(event.as_bytes()).await.expect("the event");
    }
    let first = live_ack(&mut ws, 1).await;
    let second = live_ack(&mut ws, 2).await;
    ws.send_text(b"42/live,3[\"catch-up\",{}]")
        .await
        .expect("the event");
    let third = live_ack(&mut ws, 3).await;

    assert_eq!(first["error"], "invalid_cursor", "{first}");
    assert_eq!(second["error"], "invalid_cursor", "{second}");
    assert_eq!(
        third["items"],
        serde_json::json!([]),
        "still served: {third}"
    );
}
