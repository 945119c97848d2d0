//! The socket.io limits of "Safe by default": 128 KiB per websocket message or polling
//! body, `mailer.max_sockets` sessions and anonymous `/live` viewers' own pool within them
//! (`mailer.max_live_sockets`), 1,000 rooms per socket, and browser origins.

use crate::common::raw_ws::RawWs;
use crate::common::{
    MailerProcess, fast_options, node_package, spawn_app, spawn_with, test_config,
};
use crate::socketio_js::run_script;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: usize = 128 * 1024;

/// Opens an engine.io session over polling and returns its id.
async fn polling_handshake(http: &reqwest::Client, base: &str) -> Result<String, (u16, String)> {
    let response = http
        .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .expect("the mailer answers");
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    if status != 200 {
        return Err((status, body));
    }
    let open: Value = serde_json::from_str(body.trim_start_matches('0')).expect("an OPEN packet");
    Ok(open["sid"].as_str().expect("a sid").to_string())
}

async fn post_body(http: &reqwest::Client, base: &str, sid: &str, body: Vec<u8>) -> u16 {
    http.post(format!(
        "{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
    ))
    .header("content-type", "text/plain;charset=UTF-8")
    .body(body)
    .send()
    .await
    .map(|r| r.status().as_u16())
    .unwrap_or(0)
}

/// A `send-mail` event whose engine.io message is `size` bytes long.
fn send_mail_message(size: usize) -> Vec<u8> {
    let head = br#"42["send-mail",{"login":""#;
    let tail = br#""}]"#;
    let mut message = head.to_vec();
    message.resize(size - tail.len(), b'x');
    message.extend_from_slice(tail);
    message
}

#[tokio::test]
async fn a_polling_body_over_128_kib_closes_its_session() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let sid = polling_handshake(&http, &app.base)
        .await
        .expect("a session");

    let small = post_body(&http, &app.base, &sid, b"3".to_vec()).await;
    let large = post_body(&http, &app.base, &sid, send_mail_message(LIMIT + 1024)).await;
    let after = http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
            app.base
        ))
        .send()
        .await
        .expect("the mailer answers");
    let after_status = after.status().as_u16();
    let after_body = after.text().await.unwrap_or_default();

    assert_eq!(small, 200, "a small body is taken");
    assert_eq!(large, 413, "a body over 128 KiB is refused");
    assert_eq!(after_status, 400, "and its session is closed: {after_body}");
    assert!(after_body.contains("Session ID unknown"), "{after_body}");
}

#[tokio::test]
async fn handshakes_past_max_sockets_are_refused_until_a_session_ends() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.max_sockets = 3;
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
    let http = reqwest::Client::new();
    let addr = app.base.trim_start_matches("http://").to_string();

    let first = polling_handshake(&http, &app.base)
        .await
        .expect("session 1");
    let _second = polling_handshake(&http, &app.base)
        .await
        .expect("session 2");
    let _third = RawWs::connect(&addr).await.expect("session 3, a websocket");
    let refused = polling_handshake(&http, &app.base).await;
    let refused_ws = RawWs::connect(&addr).await;
    // Closing a session gives its place back.
    assert_eq!(
        post_body(&http, &app.base, &first, b"40/live,".to_vec()).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        post_body(&http, &app.base, &first, b"1".to_vec()).await,
        200
    );
    let reopened = std::sync::Mutex::new(Err((0, String::new())));
    testkit::eventually(Duration::from_secs(2), || async {
        let handshake = polling_handshake(&http, &app.base).await;
        let done = handshake.is_ok();
        *reopened.lock().unwrap() = handshake;
        done
    })
    .await;
    let reopened = reopened.into_inner().unwrap();

    let (status, body) = refused.expect_err("a fourth session is refused");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too_many_sessions"), "{body}");
    assert!(refused_ws.is_err(), "a websocket handshake is refused too");
    assert!(
        reopened.is_ok(),
        "a place freed by a closed session is taken again"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("socketio_refused_total{reason=\"sessions\"} 2"),
        "{metrics}"
    );
}

/// Polls `/metrics` until it holds `line`, for at most 20 s.
async fn wait_for_metric(app: &crate::common::TestApp, line: &str) {
    let seen = testkit::eventually(Duration::from_secs(20), || async {
        app.metrics().await.lines().any(|l| l == line)
    })
    .await;
    assert!(seen, "no {line:?} within 20 s:\n{}", app.metrics().await);
}

#[tokio::test]
async fn anonymous_viewers_past_max_live_sockets_are_refused_and_leave_services_their_sessions() {
    let test =
        "anonymous_viewers_past_max_live_sockets_are_refused_and_leave_services_their_sessions";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.max_sockets = 56;
    config.mailer.max_live_sockets = 50;
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
    let addr = app.base.trim_start_matches("http://").to_string();

    // Arrange: as many idle anonymous viewers as there are sessions; 50 get in.
    let mut viewers = Vec::new();
    for n in 0..56 {
        let ws = RawWs::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("viewer {n}'s handshake: {e}"));
        viewers.push(tokio::spawn(ws.idle_in("/live")));
    }
    wait_for_metric(&app, "socketio_connected_clients{namespace=\"/live\"} 50").await;
    wait_for_metric(&app, "socketio_refused_total{reason=\"viewers\"} 6").await;

    // Act: one more viewer, then a service client.
    let seen = run_script(
        &modules,
        "socketio_limits.js",
        &[&app.base, &app.token, "pools"],
    )
    .await;

    // Assert
    let refused = seen["live_refused"].as_str().unwrap_or("");
    assert!(refused.starts_with("too_many_viewers"), "{refused:?}");
    assert_eq!(seen["service_connect"], Value::Null, "{seen:?}");
    assert_eq!(seen["ack"]["status"], "accepted", "{seen:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("socketio_refused_total{reason=\"viewers\"} 7"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("reason=\"sessions\""),
        "no handshake was refused: {metrics}"
    );
    for viewer in viewers {
        viewer.abort();
    }
}

#[tokio::test]
async fn browser_handshakes_need_the_mailers_own_origin_or_an_allowed_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.allowed_origins = vec!["https://ops.example.com".into()];
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
    let http = reqwest::Client::new();
    let handshake = |origin: Option<String>| {
        let mut request = http.get(format!("{}/socket.io/?EIO=4&transport=polling", app.base));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move {
            let response = request.send().await.expect("the mailer answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };

    let evil = handshake(Some("http://evil.example".into())).await;
    let own = handshake(Some(app.base.clone())).await;
    let listed = handshake(Some("https://ops.example.com".into())).await;
    let none = handshake(None).await;

    assert_eq!(evil.0, 403, "{}", evil.1);
    let body: Value = serde_json::from_str(&evil.1).expect("a JSON error");
    assert_eq!(body["error"], "forbidden_origin");
    assert_eq!(own.0, 200, "the mailer's own origin: {}", own.1);
    assert!(own.1.starts_with('0'), "an engine.io OPEN: {}", own.1);
    assert_eq!(listed.0, 200, "a listed origin: {}", listed.1);
    assert_eq!(none.0, 200, "no Origin (a service): {}", none.1);
}

#[tokio::test]
async fn a_socket_may_join_at_most_1000_rooms() {
    let test = "a_socket_may_join_at_most_1000_rooms";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let app = spawn_app().await;

    let seen = run_script(
        &modules,
        "socketio_limits.js",
        &[&app.base, &app.token, "rooms"],
    )
    .await;

    assert_eq!(seen["joined"], 1000);
    assert_eq!(
        seen["join_1001"],
        json!({
            "ok": false,
            "error": "too_many_rooms",
            "message": "A socket may be in at most 1000 rooms; leave one first."
        })
    );
    assert_eq!(
        seen["join_again"],
        json!({"ok": true}),
        "a room already joined"
    );
    assert_eq!(seen["leave"], json!({"ok": true}));
    assert_eq!(seen["join_after_leave"], json!({"ok": true}));
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test]
async fn the_mailer_binary_stays_within_20_mib_after_oversize_messages_and_bodies() {
    let mailer = MailerProcess::start(&[]).await;
    let (base, addr, pid) = (mailer.base.clone(), mailer.addr.clone(), mailer.pid);
    let http = reqwest::Client::new();
    // Warm up both transports with messages under the limit, so what is measured next is
    // what oversize input costs.
    for _ in 0..5 {
        let sid = polling_handshake(&http, &base).await.expect("a session");
        post_body(&http, &base, &sid, send_mail_message(64 * 1024)).await;
        let mut ws = RawWs::connect(&addr).await.expect("a websocket");
        let _ = ws.send_text(&send_mail_message(64 * 1024)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_kib(pid);

    let mut ws_closed = 0;
    let mut bodies_refused = 0;
    for _ in 0..20 {
        let mut ws = RawWs::connect(&addr).await.expect("a websocket");
        let _ = ws.send_text(&send_mail_message(200 * 1024)).await;
        if ws.closed_within(Duration::from_secs(5)).await {
            ws_closed += 1;
        }
        let sid = polling_handshake(&http, &base).await.expect("a session");
        if post_body(&http, &base, &sid, send_mail_message(200 * 1024)).await == 413 {
            bodies_refused += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident_kib(pid);
    mailer.kill().await;

    assert_eq!(
        ws_closed, 20,
        "each 200 KiB websocket message closes its connection"
    );
    assert_eq!(bodies_refused, 20, "each 200 KiB polling body is refused");
    assert!(
        after <= before + 20 * 1024,
        "resident memory went from {before} kB to {after} kB"
    );
}
