//! Bad input on every door gets a clear error or the dead queue, never a crash, and the good
//! requests sent around it all end as mails.

use crate::support::node_peers_available;
use crate::support::stack::{Kind, SERVICE_TOKEN, Stack};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::skip::{RABBITMQ, available};
use testkit::smtp::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

/// Sends malformed bodies to `POST /users` and checks each answer's status and shape.
async fn users_rest_rejects_bad_bodies(stack: &Stack) {
    let url = format!("{}/users", stack.users_url());
    let http = stack.http();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "malformed JSON",
            http.post(&url)
                .header("content-type", "application/json")
                .body("{\"login\": "),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong types",
            http.post(&url)
                .json(&json!({"login": 7, "email": [], "password": true})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid values",
            http.post(&url).json(&json!({
                "login": "No Spaces!", "email": "nope", "password": "short",
                "first_name": "A", "last_name": "B"
            })),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON",
            http.post(&url)
                .header("content-type", "text/plain")
                .body("login=ada"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "oversize",
            http.post(&url)
                .header("content-type", "application/json")
                .body(vec![b' '; 65 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (name, request, expected) in cases {
        let response = request.send().await.expect(name);
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{name}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{name}: error shape, got {body}"
        );
    }
}

/// Sends malformed bodies to the mailer's `POST /mails`.
async fn mailer_rest_rejects_bad_bodies(stack: &Stack) {
    let url = format!("{}/mails", stack.mailer_url());
    let http = stack.http();
    for (name, body) in [
        ("malformed JSON", "{\"id\": ".to_string()),
        ("unknown template", json!({"id": uuid::Uuid::now_v7(), "template": "nope", "locale": "fr",
            "to": {"email": "a@example.com", "name": "A"}, "vars": {}, "requested_at": "2026-11-27T08:00:00Z"}).to_string()),
        ("not an object", "[1,2,3]".to_string()),
    ] {
        let response = http
            .post(&url)
            .bearer_auth(SERVICE_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect(name);
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert_eq!(answer["status"], "rejected", "{name}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {answer}");
    }
}

fn valid_request(email: &str) -> Value {
    json!({
        "id": uuid::Uuid::now_v7(),
        "template": "welcome",
        "locale": "en",
        "to": {"email": email, "name": "Valid One"},
        "vars": {"login": "validone"},
        "requested_at": "2026-11-27T08:00:00Z"
    })
}

/// Sends garbage `send-mail` payloads with the official socket.io client.
async fn socketio_rejects_garbage(stack: &Stack) -> bool {
    if !node_peers_available("socketio_rejects_garbage") {
        return false;
    }
    let js = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
    let valid = valid_request("socket-valid@example.com");
    let output = tokio::process::Command::new("node")
        .arg(format!("{js}/send-garbage.js"))
        .arg(stack.mailer_url())
        .arg(SERVICE_TOKEN)
        .arg(valid.to_string())
        .env("NODE_PATH", format!("{js}/node_modules"))
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "send-garbage.js: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 8, "one ack per case: {stdout}");
    for line in &lines {
        let answer = &line["ack"];
        if line["case"] == "valid" {
            assert_eq!(answer["status"], "accepted", "{line}");
        } else {
            assert_eq!(answer["status"], "rejected", "{line}");
            assert!(
                answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{line}"
            );
        }
    }
    true
}

/// Publishes messages that are not mail requests straight to the exchange and checks they
/// end in the dead queue.
async fn amqp_dead_letters_garbage(stack_exchange: &str) {
    use lapin::options::{BasicGetOptions, BasicPublishOptions};
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    let conn = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .expect("connect to RabbitMQ");
    let channel = conn.create_channel().await.expect("a channel");
    let garbage: [&[u8]; 3] = [b"not json at all", b"{\"id\": 12}", b"[]"];
    for body in garbage {
        channel
            .basic_publish(
                stack_exchange.into(),
                "mail.request".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let dead_queue = format!("{stack_exchange}.dead");
    let dead = std::sync::atomic::AtomicUsize::new(0);
    testkit::eventually(Duration::from_secs(10), || async {
        if let Some(message) = channel
            .basic_get(dead_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic_get on the dead queue")
        {
            assert!(
                garbage.contains(&message.delivery.data.as_slice()),
                "only the garbage is dead"
            );
            dead.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        dead.load(std::sync::atomic::Ordering::SeqCst) == garbage.len()
    })
    .await;
    let dead = dead.into_inner();
    assert_eq!(
        dead,
        garbage.len(),
        "every garbage message lands in {dead_queue}"
    );
    let _ = conn.close(0, "done".into()).await;
}

async fn bad_input_on_every_door_loses_no_good_mail(kind: Kind, exchange: Option<String>) {
    let mut stack = Stack::configure(kind, SmtpSink::start());
    if let Some(exchange) = &exchange {
        stack.set_env("FACTEUR_TRANSPORT__AMQP__EXCHANGE", exchange);
    }
    stack.start_mailer().await;
    stack.start_users().await;

    stack.create_user("before").await;
    users_rest_rejects_bad_bodies(&stack).await;
    mailer_rest_rejects_bad_bodies(&stack).await;
    let sent_by_socket = socketio_rejects_garbage(&stack).await;
    if let Some(exchange) = &exchange {
        amqp_dead_letters_garbage(exchange).await;
    }
    stack.create_user("after").await;

    let expected = 2 + usize::from(sent_by_socket);
    let mails = stack.smtp.wait_for(expected, WAIT).await;
    let mails_settled = stack.settled_mails().await;
    assert_eq!(
        mails.len(),
        expected,
        "the good requests all end as mails: {mails:?}"
    );
    assert_eq!(mails_settled.len(), expected, "and nothing else is sent");
    for name in ["users", "mailer"] {
        assert!(
            !stack.log(name).contains("panicked"),
            "{name} panicked:\n{}",
            stack.log(name)
        );
    }
}

#[tokio::test]
async fn socketio_bad_input_on_every_door_loses_no_good_mail() {
    bad_input_on_every_door_loses_no_good_mail(Kind::Socketio, None).await;
}

#[tokio::test]
async fn amqp_bad_input_on_every_door_loses_no_good_mail() {
    if !available(RABBITMQ, "amqp_bad_input_on_every_door_loses_no_good_mail") {
        return;
    }
    let _broker = crate::faults::broker_shared().await;
    let exchange = format!("facteur.bad.{}", uuid::Uuid::new_v4().simple());
    bad_input_on_every_door_loses_no_good_mail(Kind::Amqp, Some(exchange)).await;
}
