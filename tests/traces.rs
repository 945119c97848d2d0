//! One trace from the HTTP request to the SMTP reply: the real `users` and `mailer` export
//! their spans over OTLP/HTTP to a real receiver (the test kit's, which decodes them with the
//! protocol's own definitions), on both transports. Also: a retried mail keeps
//! its trace, JSON logs name it, and an endpoint that is down costs nothing but counted spans.

use crate::support::stack::{Kind, Stack, metric_sum_with};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::free_port;
use testkit::otlp::OtlpReceiver;
use testkit::skip::{RABBITMQ, available};
use testkit::smtp::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);
const SMTP_SPAN: &str = "Handing a mail to the SMTP server";
const ATTEMPT_SPAN: &str = "Delivering a mail";
const ACCEPT_SPAN: &str = "Accepting a mail request";

/// Waits until `done` holds for the spans of `trace_id` the receiver has; returns them.
async fn wait_for_trace(
    receiver: &OtlpReceiver,
    trace_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    testkit::eventually(WAIT, || std::future::ready(done(&receiver.trace(trace_id)))).await;
    receiver.trace(trace_id)
}

/// A caller's trace context: a fresh trace id and the caller's span id.
fn caller_traceparent() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let header = format!("00-{trace_id}-{span_id}-01");
    (header, trace_id, span_id)
}

/// A stack that exports to `endpoint` (none: export off, the default), logging JSON at info
/// (and the mailer's handoff line). The tests' own address, 127.0.0.1, is a trusted trace
/// peer; requests sent from 127.0.0.2 are not.
fn traced_stack(kind: Kind, smtp: SmtpSink, endpoint: Option<&str>) -> Stack {
    let mut stack = Stack::configure(kind, smtp);
    stack.set_env("FACTEUR_TELEMETRY__TRUSTED_TRACE_PEERS", "[127.0.0.1]");
    if let Some(endpoint) = endpoint {
        stack.set_env("FACTEUR_TELEMETRY__OTLP_ENDPOINT", endpoint);
    }
    stack.set_env("FACTEUR_LOG__FORMAT", "json");
    stack.set_env("RUST_LOG", "info,mailer::sending=debug");
    stack
}

/// `POST /users` for `login` carrying `traceparent`; the answer must be 201.
async fn create_user_in_trace(stack: &Stack, login: &str, traceparent: &str) {
    create_user_in_trace_from(stack.http(), stack, login, traceparent).await;
}

/// [`create_user_in_trace`] through `client` (bound to some local address).
async fn create_user_in_trace_from(
    client: &reqwest::Client,
    stack: &Stack,
    login: &str,
    traceparent: &str,
) {
    let response = client
        .post(format!("{}/users", stack.users_url()))
        .header("traceparent", traceparent)
        .json(&serde_json::json!({
            "login": login,
            "email": format!("{login}@example.com"),
            "password": "correct horse battery",
            "first_name": "Ada",
            "last_name": "Lovelace",
        }))
        .send()
        .await
        .expect("POST /users");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn parent_of<'a>(spans: &'a [Value], span: &Value) -> Option<&'a Value> {
    spans
        .iter()
        .find(|s| s["span_id"] == span["parent_span_id"])
}

fn describe(spans: &[Value]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} <- {} {} {}",
                s["service"], s["span_id"], s["parent_span_id"], s["name"], s["attributes"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The span ids named by the JSON log lines of `log` that name `trace_id`.
fn logged_span_ids(log: &str, trace_id: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["trace_id"] == trace_id)
        .filter_map(|l| l["span_id"].as_str().map(str::to_string))
        .filter(|s| s.len() == 16)
        .collect()
}

/// How many JSON log lines of `log` name `trace_id` and a span id.
fn log_trace_ids(log: &str, trace_id: &str) -> usize {
    logged_span_ids(log, trace_id).len()
}

async fn one_trace_from_the_request_to_the_smtp_reply(kind: Kind) {
    let receiver = OtlpReceiver::start();
    let mut stack = traced_stack(kind, SmtpSink::start(), Some(&receiver.endpoint()));
    stack.start_mailer().await;
    stack.start_users().await;
    let (traceparent, trace_id, caller_span) = caller_traceparent();

    create_user_in_trace(&stack, &format!("traced{}", kind.as_str()), &traceparent).await;

    let spans = wait_for_trace(&receiver, &trace_id, |spans| {
        named(spans, SMTP_SPAN).len() == 1 && named(spans, "request").len() == 1
    })
    .await;
    let chain = || -> Option<Vec<&Value>> {
        let mut chain = vec![*named(&spans, SMTP_SPAN).first()?];
        while let Some(parent) = parent_of(&spans, chain.last()?) {
            chain.push(parent);
        }
        Some(chain)
    };
    let chain =
        chain().unwrap_or_else(|| panic!("no SMTP span in the trace:\n{}", describe(&spans)));
    let names: Vec<(&str, &str)> = chain
        .iter()
        .rev()
        .map(|s| (s["service"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("users", "request"),
            ("users", "Writing a mail request to the outbox"),
            ("users", "Publishing a mail request"),
            ("mailer", ACCEPT_SPAN),
            ("mailer", ATTEMPT_SPAN),
            ("mailer", SMTP_SPAN),
        ],
        "the spans, root first:\n{}",
        describe(&spans)
    );
    let root = chain.last().unwrap();
    assert_eq!(
        root["parent_span_id"], caller_span,
        "the request continues the caller's span"
    );
    assert_eq!(chain[0]["attributes"]["smtp.reply_class"], "2xx");
    assert_eq!(chain[1]["attributes"]["attempt"], 1);
    assert_eq!(chain[1]["attributes"]["template"], "welcome");

    // The JSON log lines written inside the request's spans name its trace, in both services.
    testkit::eventually(Duration::from_secs(5), || {
        std::future::ready(log_trace_ids(&stack.log("mailer"), &trace_id) > 0)
    })
    .await;
    assert!(
        log_trace_ids(&stack.log("users"), &trace_id) > 0,
        "a users log line with trace_id {trace_id}:\n{}",
        stack.log("users")
    );
    assert!(
        log_trace_ids(&stack.log("mailer"), &trace_id) > 0,
        "a mailer log line with trace_id {trace_id}:\n{}",
        stack.log("mailer")
    );
}

#[tokio::test]
async fn a_users_request_and_its_mail_make_one_trace_on_socketio() {
    one_trace_from_the_request_to_the_smtp_reply(Kind::Socketio).await;
}

#[tokio::test]
async fn a_users_request_and_its_mail_make_one_trace_on_amqp() {
    let test = "a_users_request_and_its_mail_make_one_trace_on_amqp";
    if !available(RABBITMQ, test) {
        return;
    }
    one_trace_from_the_request_to_the_smtp_reply(Kind::Amqp).await;
}

/// nodemailer's `smtp-server` (tests/js/smtp-server.js), whose replies depend on the
/// recipient; stopped when dropped.
struct NodeSmtp(Child);

impl NodeSmtp {
    async fn start(test: &str, port: u16) -> Option<NodeSmtp> {
        let modules = testkit::node::modules(test, &["smtp-server"])?;
        let child = Command::new("node")
            .arg(testkit::node::workspace().join("tests/js/smtp-server.js"))
            .env("NODE_PATH", &modules)
            .args(["--port", &port.to_string(), "--count-only"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("node starts");
        let listens = testkit::eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(listens, "the SMTP server listens within 20 s");
        Some(NodeSmtp(child))
    }
}

impl Drop for NodeSmtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_mail_retried_after_a_4xx_shows_each_attempt_in_its_trace() {
    let test = "a_mail_retried_after_a_4xx_shows_each_attempt_in_its_trace";
    let receiver = OtlpReceiver::start();
    let smtp_port = free_port();
    let Some(_smtp) = NodeSmtp::start(test, smtp_port).await else {
        return;
    };
    let mut stack = traced_stack(
        Kind::Socketio,
        SmtpSink::reserve(),
        Some(&receiver.endpoint()),
    );
    stack.set_env("FACTEUR_MAILER__SMTP__PORT", &smtp_port.to_string());
    stack.start_mailer().await;
    stack.start_users().await;
    let (traceparent, trace_id, _) = caller_traceparent();

    // `later…` recipients get 451 twice, then 250.
    create_user_in_trace(&stack, "latertraced", &traceparent).await;

    let spans = wait_for_trace(&receiver, &trace_id, |spans| {
        named(spans, SMTP_SPAN)
            .iter()
            .any(|s| s["attributes"]["smtp.reply_class"] == "2xx")
    })
    .await;
    let accept = named(&spans, ACCEPT_SPAN);
    assert_eq!(accept.len(), 1, "one accept span:\n{}", describe(&spans));
    let mut attempts = named(&spans, ATTEMPT_SPAN);
    attempts.sort_by_key(|s| s["attributes"]["attempt"].as_i64());
    assert!(
        attempts.len() >= 2,
        "two attempts or more:\n{}",
        describe(&spans)
    );
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            attempt["parent_span_id"], accept[0]["span_id"],
            "attempt {n}'s parent"
        );
        assert_eq!(attempt["attributes"]["attempt"], n as i64 + 1);
        let smtp: Vec<_> = named(&spans, SMTP_SPAN)
            .into_iter()
            .filter(|s| s["parent_span_id"] == attempt["span_id"])
            .collect();
        assert_eq!(
            smtp.len(),
            1,
            "one SMTP span per attempt:\n{}",
            describe(&spans)
        );
        let expected = if n + 1 == attempts.len() {
            "2xx"
        } else {
            "4xx"
        };
        assert_eq!(
            smtp[0]["attributes"]["smtp.reply_class"],
            expected,
            "attempt {}",
            n + 1
        );
    }
}

#[tokio::test]
async fn with_the_span_endpoint_down_requests_succeed_and_lost_spans_are_counted() {
    // A port nothing listens on: every export is refused.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut stack = traced_stack(Kind::Socketio, SmtpSink::start(), Some(&closed));
    stack.start_mailer().await;
    stack.start_users().await;
    let (traceparent, _, _) = caller_traceparent();

    create_user_in_trace(&stack, "untraced", &traceparent).await;
    let mails = stack.smtp.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1, "the welcome mail is sent");

    let lost =
        |text: String| metric_sum_with(&text, "telemetry_spans_dropped_total", &["export_failed"]);
    let both = || async {
        (
            lost(stack.metrics_text(&stack.users_url()).await),
            lost(stack.metrics_text(&stack.mailer_url()).await),
        )
    };
    let counted = testkit::eventually(WAIT, || async {
        let (users, mailer) = both().await;
        users > 0.0 && mailer > 0.0
    })
    .await;
    let (users, mailer) = both().await;
    assert!(
        counted,
        "failed exports counted in both /metrics (users {users}, mailer {mailer})"
    );
    // Still answering, and still sending, while spans are being lost.
    create_user_in_trace(&stack, "untraced2", &traceparent).await;
    assert_eq!(stack.smtp.wait_for(2, WAIT).await.len(), 2);
}

/// Export off, the default: spans are still made and the trace still carried, so the
/// caller's trace id reaches the mailer's log lines through the outbox, the transport and
/// the delivery store, under span ids of the services' own.
#[tokio::test]
async fn with_export_off_the_callers_trace_still_reaches_both_services_logs() {
    let mut stack = traced_stack(Kind::Socketio, SmtpSink::start(), None);
    stack.start_mailer().await;
    stack.start_users().await;
    let (traceparent, trace_id, caller_span) = caller_traceparent();

    create_user_in_trace(&stack, "exportoff", &traceparent).await;
    assert_eq!(
        stack.smtp.wait_for(1, WAIT).await.len(),
        1,
        "the welcome mail is sent"
    );

    testkit::eventually(Duration::from_secs(5), || {
        std::future::ready(log_trace_ids(&stack.log("mailer"), &trace_id) > 0)
    })
    .await;
    for service in ["users", "mailer"] {
        let log = stack.log(service);
        let spans = logged_span_ids(&log, &trace_id);
        assert!(
            !spans.is_empty(),
            "a {service} log line with trace_id {trace_id}:\n{log}"
        );
        assert!(
            spans.iter().all(|s| *s != caller_span),
            "{service} logs under spans of its own, not the caller's {caller_span}: {spans:?}"
        );
    }
    // Nothing is sent anywhere, so nothing is counted as lost.
    let text = stack.metrics_text(&stack.mailer_url()).await;
    assert_eq!(
        metric_sum_with(&text, "telemetry_spans_dropped_total", &[]),
        0.0,
        "{text}"
    );
}

/// A client's `traceparent` chooses no trace unless the client is a trusted trace peer: the
/// request from 127.0.0.2 (untrusted) gets a recorded trace of its own, linked to the caller's,
/// even though the caller asked for no sampling; the same header from 127.0.0.1 (trusted) is
/// continued.
#[tokio::test]
async fn a_traceparent_from_an_untrusted_peer_starts_a_recorded_trace_linked_to_it() {
    let receiver = OtlpReceiver::start();
    let mut stack = traced_stack(
        Kind::Socketio,
        SmtpSink::start(),
        Some(&receiver.endpoint()),
    );
    stack.start_mailer().await;
    stack.start_users().await;
    let caller_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let unsampled = format!("00-{caller_id}-{caller_span}-00");
    let untrusted = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("a client on 127.0.0.2");

    create_user_in_trace_from(&untrusted, &stack, "edgeuntrusted", &unsampled).await;
    create_user_in_trace(&stack, "edgetrusted", &unsampled).await;

    // The untrusted request's span: in a trace of its own, a root, linked to the caller's.
    let linked_to_caller = |span: &Value| {
        span["links"]
            .as_array()
            .is_some_and(|links| links.iter().any(|l| l["trace_id"] == caller_id))
    };
    let find = || {
        receiver
            .spans()
            .into_iter()
            .find(|s| s["service"] == "users" && s["name"] == "request" && linked_to_caller(s))
    };
    testkit::eventually(WAIT, || std::future::ready(find().is_some())).await;
    let request = find().unwrap_or_else(|| {
        panic!(
            "no users request span linked to trace {caller_id}:\n{}",
            describe(&receiver.spans())
        )
    });
    assert_ne!(request["trace_id"], caller_id, "a trace of its own");
    assert_eq!(request["parent_span_id"], "", "the root of its trace");
    assert_eq!(
        request["links"][0]["span_id"], caller_span,
        "the link names the caller's span"
    );
    // Its spans, down to the SMTP reply, are recorded in that trace.
    let own = request["trace_id"].as_str().unwrap().to_string();
    let spans = wait_for_trace(&receiver, &own, |spans| named(spans, SMTP_SPAN).len() == 1).await;
    assert_eq!(named(&spans, SMTP_SPAN).len(), 1, "{}", describe(&spans));

    // The trusted request continued the caller's trace, unsampled as the caller asked: its
    // log lines name the caller's trace id, and nothing of that trace is exported.
    testkit::eventually(Duration::from_secs(5), || {
        std::future::ready(log_trace_ids(&stack.log("users"), &caller_id) > 0)
    })
    .await;
    assert!(
        log_trace_ids(&stack.log("users"), &caller_id) > 0,
        "a users log line in the caller's trace {caller_id}:\n{}",
        stack.log("users")
    );
    assert!(receiver.trace(&caller_id).is_empty());
    // Only the trusted request's log lines name the caller's trace: the untrusted one's
    // name its own.
    assert!(log_trace_ids(&stack.log("users"), &own) > 0);
}
