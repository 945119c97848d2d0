//! Webhooks against the real mailer: an endpoint (a small HTTP server in the test) receives
//! each status change, signed; the Standard Webhooks reference library (PyPI, pinned in
//! tests/webhooks/requirements.txt) verifies the signature with the secret the mailer showed.
//! Failed attempts are retried on the configured schedule and listed; an event survives a
//! SIGKILL between the status change and its delivery; URLs into the mailer's own network are
//! refused unless allowed; an endpoint failing for 5 days is disabled.

use crate::common::{MailerProcess, fast_options, mail_request, spawn_with, test_config};
use crate::store_backends::{drop_postgres, fresh_postgres};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// How the endpoint answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Holds the request without answering.
    Hang,
}

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// The status once `replies` is spent.
    otherwise: Arc<Mutex<u16>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// A webhook endpoint on 127.0.0.1: answers 200 unless told otherwise.
pub struct Endpoint {
    pub url: String,
    script: Script,
}

impl Endpoint {
    /// Starts one whose first answers are `replies`, then 200.
    pub async fn start(replies: &[Reply]) -> Endpoint {
        let script = Script {
            replies: Arc::new(Mutex::new(replies.iter().copied().collect())),
            otherwise: Arc::new(Mutex::new(200)),
            received: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Endpoint { url, script }
    }

    /// Answers `status` once the scripted replies are spent.
    pub fn otherwise(&self, status: u16) {
        *self.script.otherwise.lock().unwrap() = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests came, and answers them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let came = testkit::eventually(within, || async { self.received().len() >= n }).await;
        let received = self.received();
        assert!(
            came,
            "the endpoint got {} requests within {within:?}, not {n}: {:?}",
            received.len(),
            received.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
        );
        received
    }
}

async fn receive(State(script): State<Script>, headers: HeaderMap, body: Bytes) -> StatusCode {
    script.received.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = script.replies.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(code)) => StatusCode::from_u16(code).expect("a status"),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        None => StatusCode::from_u16(*script.otherwise.lock().unwrap()).expect("a status"),
    }
}

/// The event types `received` holds for mail `id`, in their order.
fn types_of(received: &[Received], id: &str) -> Vec<String> {
    received
        .iter()
        .map(Received::json)
        .filter(|e| e["data"]["id"] == id)
        .map(|e| e["type"].as_str().expect("a type").to_string())
        .collect()
}

/// The verifier's Python, when tests/webhooks/.venv holds the library; otherwise the kit's
/// skip rule for `test`.
fn verifier(test: &str) -> Option<PathBuf> {
    crate::common::python_peer(test, "webhooks", "import standardwebhooks")
}

/// What the reference library says of `request` under `secret`: `ok <type>` or `fail: …`.
fn verify(python: &PathBuf, secret: &str, request: &Received) -> String {
    use std::io::Write;
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .into_iter()
            .map(|h| (h.to_string(), json!(request.header(h))))
            .collect();
    let input = json!({"headers": headers, "body": request.body}).to_string();
    let mut child = std::process::Command::new(python)
        .arg(testkit::node::workspace().join("tests/webhooks/verify.py"))
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the verifier starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("the request reaches the verifier");
    let output = child.wait_with_output().expect("the verifier ends");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

fn webhook_config(dir: &TempDir, database: Option<&str>) -> domain::config::Config {
    let mut config = test_config(dir);
    config.mailer.webhooks.allow_private_targets = true;
    config.mailer.webhooks.retry_delays = vec![1, 1, 1];
    if let Some(url) = database {
        config.mailer.database = url.to_string();
    }
    config
}

/// An endpoint answering 500 twice then 200 gets the `sent` event three times, the same body
/// and id each time, verified by the reference library; the attempts list shows the three,
/// and an operator's retry sends it a fourth time.
async fn signed_and_retried(database: Option<&str>) {
    let Some(python) = verifier("webhooks_are_signed_retried_and_listed") else {
        return;
    };
    let endpoint = Endpoint::start(&[Reply::Status(500), Reply::Status(500)]).await;
    let dir = TempDir::new().expect("a temporary directory");
    let app = spawn_with(
        webhook_config(&dir, database),
        fast_options(),
        Arc::new(dir),
    )
    .await;
    let (status, created) = app
        .post(
            "/webhooks",
            &json!({"url": endpoint.url, "events": ["sent"], "description": "the test's"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("a secret").to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let hook = created["id"].as_str().expect("an id").to_string();
    let (_, listed) = app.get("/webhooks").await;
    assert_eq!(listed["items"][0]["id"], hook.as_str());
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");

    let request = mail_request("welcome", "en");
    let (status, answer) = app.post_mail(&request).await;
    assert_eq!(status, 202, "{answer}");
    let id = request["id"].as_str().expect("an id");
    let received = endpoint.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 3, "three attempts, then no more");
    for r in &received {
        assert_eq!(r.header("webhook-id"), received[0].header("webhook-id"));
        assert_eq!(r.body, received[0].body, "the same body on every attempt");
        assert_eq!(verify(&python, &secret, r), "ok mail.sent");
    }
    let event = received[2].json();
    assert_eq!(event["type"], "mail.sent");
    assert_eq!(event["data"]["id"], id);
    assert_eq!(event["data"]["status"], "sent");
    assert_eq!(event["data"]["to"], request["to"], "the whole recipient");
    assert_eq!(event["data"]["template"], "welcome");
    let mut tampered = received[2].clone();
    tampered.body = tampered.body.replace("welcome", "welcomf");
    assert!(verify(&python, &secret, &tampered).starts_with("fail"));
    assert!(
        verify(
            &python,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &received[2]
        )
        .starts_with("fail")
    );

    let attempts = testkit::eventually(Duration::from_secs(5), || async {
        app.get(&format!("/webhooks/{hook}/attempts")).await.1["total"] == 3
    })
    .await;
    let (_, page) = app.get(&format!("/webhooks/{hook}/attempts")).await;
    assert!(attempts, "three attempts listed: {page}");
    let codes: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["status_code"].as_u64().expect("a status code"))
        .collect();
    assert_eq!(codes, [200, 500, 500], "newest first: {page}");
    for attempt in page["items"].as_array().expect("items") {
        assert_eq!(attempt["event_type"], "mail.sent");
        assert_eq!(attempt["mail_id"], id);
        assert!(attempt["duration_ms"].is_u64());
    }
    let first = page["items"][2]["id"].as_str().expect("an attempt id");
    let (status, again) = app
        .post(
            &format!("/webhooks/{hook}/attempts/{first}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status_code"], 200);
    let received = endpoint.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(
        received[3].header("webhook-id"),
        received[0].header("webhook-id")
    );
    let (status, _) = app
        .get(&format!("/webhooks/{hook}/attempts/nope/retry"))
        .await;
    assert_eq!(status, 405);
    let (status, _) = app
        .post(
            &format!("/webhooks/{hook}/attempts/att_nope/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_listed() {
    signed_and_retried(None).await;
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_listed_on_postgres() {
    let Some((url, name)) =
        fresh_postgres("webhooks_are_signed_retried_and_listed_on_postgres").await
    else {
        return;
    };
    signed_and_retried(Some(&url)).await;
    drop_postgres(&name).await;
}

/// Every status a mail goes through reaches an endpoint that wants every status, in order;
/// one that wants only `failed` gets nothing; a deleted endpoint gets nothing more.
#[tokio::test]
async fn a_mails_events_arrive_in_order_to_the_endpoints_that_want_them() {
    let every = Endpoint::start(&[]).await;
    let failures = Endpoint::start(&[]).await;
    let dir = TempDir::new().expect("a temporary directory");
    let app = spawn_with(webhook_config(&dir, None), fast_options(), Arc::new(dir)).await;
    let (status, all) = app.post("/webhooks", &json!({"url": every.url})).await;
    assert_eq!(status, 201, "{all}");
    assert_eq!(all["events"], Value::Null);
    let (status, only) = app
        .post(
            "/webhooks",
            &json!({"url": failures.url, "events": ["failed"]}),
        )
        .await;
    assert_eq!(status, 201, "{only}");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let request = mail_request("welcome", "en");
        assert_eq!(app.post_mail(&request).await.0, 202);
        ids.push(request["id"].as_str().expect("an id").to_string());
    }
    let received = every.wait_for(10, Duration::from_secs(20)).await;
    for id in &ids {
        assert_eq!(
            types_of(&received, id),
            ["mail.queued", "mail.sent"],
            "mail {id}"
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(failures.received().is_empty(), "no failure happened");
    let hook = all["id"].as_str().expect("an id");
    let (status, _) = app.delete(&format!("/webhooks/{hook}")).await;
    assert_eq!(status, 204);
    assert_eq!(app.get(&format!("/webhooks/{hook}")).await.0, 404);
    assert_eq!(app.post_mail(&mail_request("welcome", "en")).await.0, 202);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(every.received().len(), 10, "nothing after the deletion");
    // The outbox's triggers go with the last endpoint: a mailer without webhooks pays none.
    let triggers = || async {
        let db = sea_orm::Database::connect(&app.config.mailer.database)
            .await
            .expect("the database");
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &db,
            sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'trigger' \
                 AND name IN ('mail_webhook_on_insert', 'mail_webhook_on_change')",
            ),
        )
        .await
        .expect("a query")
        .expect("a row");
        row.try_get::<i64>("", "n").expect("a count")
    };
    assert_eq!(triggers().await, 2, "one endpoint is left");
    let last = only["id"].as_str().expect("an id");
    assert_eq!(app.delete(&format!("/webhooks/{last}")).await.0, 204);
    assert_eq!(triggers().await, 0, "no endpoint is left");
}

/// Loopback and private URLs are refused unless `allow_private_targets`, as are URLs that are
/// not http(s) or carry credentials.
#[tokio::test]
async fn urls_into_the_mailers_network_are_refused_unless_allowed() {
    let dir = TempDir::new().expect("a temporary directory");
    let app = spawn_with(test_config(&dir), fast_options(), Arc::new(dir)).await;
    for url in [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://localhost:9/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f000001/",
        "ftp://example.com/",
        "http://user:secret@example.com/",
    ] {
        let (status, body) = app.post("/webhooks", &json!({"url": url})).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"], "invalid_url", "{url}: {body}");
    }
    let (_, listed) = app.get("/webhooks").await;
    assert_eq!(listed["items"], json!([]));
    let dir = TempDir::new().expect("a temporary directory");
    let mut config = test_config(&dir);
    config.mailer.webhooks.allow_private_targets = true;
    let allowed = spawn_with(config, fast_options(), Arc::new(dir)).await;
    for url in ["http://127.0.0.1/", "http://10.0.0.1/"] {
        let (status, body) = allowed.post("/webhooks", &json!({"url": url})).await;
        assert_eq!(status, 201, "{url}: {body}");
    }
}

/// An event written when its mail was sent, whose delivery was under way when the mailer was
/// killed, arrives after the restart.
#[tokio::test]
async fn an_event_survives_a_kill_between_the_status_change_and_its_delivery() {
    let endpoint = Endpoint::start(&[Reply::Hang]).await;
    let env = [
        ("FACTEUR_MAILER__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("FACTEUR_MAILER__WEBHOOKS__RETRY_DELAYS", "[1, 1, 1]"),
    ];
    let mailer = MailerProcess::start(&env).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/webhooks", mailer.base))
        .bearer_auth(&mailer.token)
        .json(&json!({"url": endpoint.url, "events": ["sent"]}))
        .send()
        .await
        .expect("POST /webhooks")
        .json()
        .await
        .expect("a body");
    let request = mail_request("welcome", "en");
    let answer = http
        .post(format!("{}/mails", mailer.base))
        .bearer_auth(&mailer.token)
        .json(&request)
        .send()
        .await
        .expect("POST /mails");
    assert_eq!(answer.status(), 202);
    // The first attempt hangs: the event is stored and under way.
    let first = endpoint.wait_for(1, Duration::from_secs(20)).await;
    let mailer = mailer.kill_and_restart(&env).await;
    let received = endpoint.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        received[1].header("webhook-id"),
        first[0].header("webhook-id")
    );
    assert_eq!(received[1].json()["data"]["id"], request["id"]);
    let hook = created["id"].as_str().expect("an id");
    let page: Value = http
        .get(format!("{}/webhooks/{hook}/attempts", mailer.base))
        .bearer_auth(&mailer.token)
        .send()
        .await
        .expect("GET attempts")
        .json()
        .await
        .expect("a body");
    assert!(page["total"].as_u64().expect("a total") >= 1, "{page}");
    mailer.kill().await;
}

/// An endpoint whose attempts all failed for 5 days is disabled at its next failure, and
/// `PATCH` with `enabled: true` turns it back on.
#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_until_enabled_again() {
    let endpoint = Endpoint::start(&[]).await;
    endpoint.otherwise(503);
    let dir = TempDir::new().expect("a temporary directory");
    let mut config = webhook_config(&dir, None);
    config.mailer.webhooks.retry_delays = vec![1; 20];
    let database = config.mailer.database.clone();
    let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
    let (_, created) = app
        .post(
            "/webhooks",
            &json!({"url": endpoint.url, "events": ["sent"]}),
        )
        .await;
    let hook = created["id"].as_str().expect("an id").to_string();
    assert_eq!(app.post_mail(&mail_request("welcome", "en")).await.0, 202);
    endpoint.wait_for(1, Duration::from_secs(20)).await;
    let failing = testkit::eventually(Duration::from_secs(5), || async {
        !app.get(&format!("/webhooks/{hook}")).await.1["failing_since"].is_null()
    })
    .await;
    assert!(failing, "the endpoint is failing");
    // Its failing spell started six days ago.
    let db = sea_orm::Database::connect(&database)
        .await
        .expect("the database");
    let six_days_ago = chrono::Utc::now().timestamp_millis() - 6 * 24 * 3600 * 1000;
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("UPDATE mail_webhook_endpoints SET failing_since = {six_days_ago}"),
    )
    .await
    .expect("the update");
    let disabled = testkit::eventually(Duration::from_secs(10), || async {
        app.get(&format!("/webhooks/{hook}")).await.1["enabled"] == false
    })
    .await;
    assert!(
        disabled,
        "{}",
        app.get(&format!("/webhooks/{hook}")).await.1
    );
    endpoint.otherwise(200);
    let tries = endpoint.received().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        endpoint.received().len(),
        tries,
        "nothing is sent to a disabled endpoint"
    );
    let (status, enabled) = app
        .patch(&format!("/webhooks/{hook}"), &json!({"enabled": true}))
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["failing_since"], Value::Null);
    let received = endpoint.wait_for(tries + 1, Duration::from_secs(10)).await;
    assert_eq!(received.last().expect("one").json()["type"], "mail.sent");
}

/// Two mailers of one cluster share the endpoint list and the outbox: an endpoint added on
/// one gets each event once, whichever mailer took or sent the mail, in order per mail.
#[tokio::test]
async fn a_cluster_delivers_each_event_once() {
    let test = "a_cluster_delivers_each_event_once";
    if !testkit::skip::available(testkit::skip::REDIS, test) {
        return;
    }
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    let endpoint = Endpoint::start(&[]).await;
    let mut mailers = Vec::new();
    for _ in 0..2 {
        let dir = TempDir::new().expect("a temporary directory");
        let mut config = webhook_config(&dir, Some(&url));
        config.mailer.cluster = Some(domain::config::ClusterConfig {
            redis_url: "redis://127.0.0.1:6379".into(),
        });
        mailers.push(spawn_with(config, fast_options(), Arc::new(dir)).await);
    }
    let (status, created) = mailers[0]
        .post("/webhooks", &json!({"url": endpoint.url}))
        .await;
    assert_eq!(status, 201, "{created}");
    let (_, listed) = mailers[1].get("/webhooks").await;
    assert_eq!(
        listed["items"][0]["id"], created["id"],
        "one list for the cluster"
    );
    let mut ids = Vec::new();
    for n in 0..20 {
        let request = mail_request("welcome", "en");
        assert_eq!(mailers[n % 2].post_mail(&request).await.0, 202);
        ids.push(request["id"].as_str().expect("an id").to_string());
    }
    endpoint.wait_for(40, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = endpoint.received();
    let mut event_ids: Vec<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(received.len(), 40, "each event once");
    assert_eq!(event_ids.len(), 40, "40 distinct events");
    for id in &ids {
        assert_eq!(
            types_of(&received, id),
            ["mail.queued", "mail.sent"],
            "mail {id}"
        );
    }
    for mut mailer in mailers {
        mailer.stop().await;
    }
    drop_postgres(&name).await;
}

/// The check holds at every attempt, not only when an endpoint is added: endpoints added
/// while private targets were allowed get nothing once they are not, whether the URL names
/// the address or a host that resolves to it.
#[tokio::test]
async fn a_private_target_is_refused_at_delivery_too() {
    let endpoint = Endpoint::start(&[]).await;
    let by_name = endpoint.url.replace("127.0.0.1", "localhost");
    let dir = Arc::new(TempDir::new().expect("a temporary directory"));
    let allowed = webhook_config(&dir, None);
    let mut app = spawn_with(allowed.clone(), fast_options(), dir.clone()).await;
    let mut hooks = Vec::new();
    for url in [&endpoint.url, &by_name] {
        let (status, created) = app
            .post("/webhooks", &json!({"url": url, "events": ["sent"]}))
            .await;
        assert_eq!(status, 201, "{created}");
        hooks.push(created["id"].as_str().expect("an id").to_string());
    }
    app.stop().await;
    let mut refused = allowed;
    refused.mailer.webhooks.allow_private_targets = false;
    refused.mailer.listen = "127.0.0.1:0".parse().expect("an address");
    let app = spawn_with(refused, fast_options(), dir).await;
    assert_eq!(app.post_mail(&mail_request("welcome", "en")).await.0, 202);
    for hook in &hooks {
        let tried = testkit::eventually(Duration::from_secs(10), || async {
            app.get(&format!("/webhooks/{hook}/attempts")).await.1["total"] == 1
        })
        .await;
        let (_, page) = app.get(&format!("/webhooks/{hook}/attempts")).await;
        assert!(tried, "{page}");
        assert_eq!(page["items"][0]["status_code"], Value::Null, "{page}");
        let error = page["items"][0]["error"].as_str().expect("an error");
        assert!(
            error.contains("public address") || error.contains("no address a webhook may reach"),
            "{error}"
        );
    }
    assert!(
        endpoint.received().is_empty(),
        "nothing reached the private address"
    );
}
