//! Two mailer processes as one (`mailer.cluster`): A, the [`Stack`]'s mailer, and B, on one
//! fresh PostgreSQL database and one Redis of their own. Each writes its own domain into
//! Message-IDs (`a.cluster.test`, `b.cluster.test`), so the SMTP server tells which mailer
//! sent each mail. Also the requests, records and cursors the cluster tests read.

use super::postgres::FreshDatabase;
use super::redis::RedisServer;
use super::stack::{Kind, SERVICE_TOKEN, Stack};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};
use testkit::free_port;
use testkit::skip::POSTGRES;
use testkit::skip::available;
use testkit::smtp::{Mail, SmtpSink};

/// Mailers A and B, their store and their Redis.
pub struct MailerPair {
    /// Mailer A, its folder, and the SMTP server both send to.
    pub stack: Stack,
    /// The Redis both share; a test kills and restarts it.
    pub redis: RedisServer,
    b: Child,
    b_url: String,
    _store: FreshDatabase,
}

impl MailerPair {
    /// Starts A then B on a fresh database, sending to `smtp`, and waits until both show
    /// `cluster: connected`; `None` (after the skip-or-fail rule) when PostgreSQL or
    /// redis-server is missing.
    pub async fn start(test: &str, smtp: SmtpSink) -> Option<MailerPair> {
        Self::start_with(test, smtp, &[]).await
    }

    /// [`MailerPair::start`] with the variables `a_only` set on mailer A and not on B.
    pub async fn start_with(
        test: &str,
        smtp: SmtpSink,
        a_only: &[(&str, &str)],
    ) -> Option<MailerPair> {
        if !available(POSTGRES, test) {
            return None;
        }
        let redis = RedisServer::start(test).await?;
        let store = FreshDatabase::create("cluster");
        let mut stack = Stack::configure(Kind::Socketio, smtp);
        stack.set_env("FACTEUR_MAILER__DATABASE", &store.url());
        stack.set_env("FACTEUR_MAILER__CLUSTER__REDIS_URL", &redis.url());
        stack.set_env("FACTEUR_MAILER__FROM", "Facteur <no-reply@a.cluster.test>");
        for (key, value) in a_only {
            stack.set_env(key, value);
        }
        stack.start_mailer().await;
        for (key, _) in a_only {
            stack.unset_env(key);
        }
        let b_port = free_port();
        let b_from = "Facteur <no-reply@b.cluster.test>".to_string();
        let b = stack.spawn_with(
            "mailer",
            "mailer-b",
            &[
                ("FACTEUR_MAILER__LISTEN", format!("127.0.0.1:{b_port}")),
                ("FACTEUR_MAILER__FROM", b_from),
            ],
        );
        let pair = MailerPair {
            stack,
            redis,
            b,
            b_url: format!("http://127.0.0.1:{b_port}"),
            _store: store,
        };
        pair.stack.wait_healthy("mailer-b", pair.b_url()).await;
        pair.wait_cluster("connected", Duration::from_secs(20))
            .await;
        Some(pair)
    }

    /// Mailer A's base URL.
    pub fn a_url(&self) -> String {
        self.stack.mailer_url()
    }

    /// Mailer B's base URL.
    pub fn b_url(&self) -> String {
        self.b_url.clone()
    }

    /// The status code and body of a mailer's `/health`.
    async fn health(&self, url: &str) -> (StatusCode, Value) {
        match self.stack.http().get(format!("{url}/health")).send().await {
            Ok(r) => (r.status(), r.json().await.unwrap_or(Value::Null)),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                json!({"unreachable": e.to_string()}),
            ),
        }
    }

    /// Waits until both mailers' `/health` show `cluster: <state>`; returns how long that
    /// took and both answers (A's first). Fails with both logs after `timeout`.
    pub async fn wait_cluster(
        &self,
        state: &str,
        timeout: Duration,
    ) -> (Duration, Vec<(StatusCode, Value)>) {
        let start = Instant::now();
        let answers = || async {
            vec![
                self.health(&self.a_url()).await,
                self.health(&self.b_url).await,
            ]
        };
        let reached = testkit::eventually(timeout, || async {
            answers()
                .await
                .iter()
                .all(|(_, body)| body["cluster"] == state)
        })
        .await;
        let elapsed = start.elapsed();
        let answers = answers().await;
        assert!(
            reached,
            "both mailers should show cluster: {state:?} within {timeout:?}; /health answers {answers:?}\nmailer A:\n{}\nmailer B:\n{}",
            self.log_tail("mailer"),
            self.log_tail("mailer-b")
        );
        (elapsed, answers)
    }

    /// The last 20 lines of a mailer's log, and how many lines it has, for failure messages.
    fn log_tail(&self, name: &str) -> String {
        let log = self.stack.log(name);
        let lines: Vec<&str> = log.lines().collect();
        let last = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("({} lines, the last 20)\n{last}", lines.len())
    }
}

impl Drop for MailerPair {
    fn drop(&mut self) {
        let _ = self.b.kill();
        let _ = self.b.wait();
    }
}

/// `GET /mails/{id}` on the stack's mailer (`null` when it does not answer JSON).
pub async fn mail_record(stack: &Stack, id: &str) -> Value {
    let response = stack
        .http()
        .get(format!("{}/mails/{id}", stack.mailer_url()))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .expect("GET /mails/{id}");
    response.json().await.unwrap_or(Value::Null)
}

/// Waits until every mail of `ids` is `sent` in the store of the stack's mailer.
pub async fn wait_all_sent(stack: &Stack, ids: &[String], timeout: Duration) {
    let waiting = std::sync::Mutex::new(ids.iter().collect::<Vec<&String>>());
    let first_unsent = std::sync::Mutex::new(None);
    let all_sent = testkit::eventually(timeout, || async {
        let before = waiting.lock().expect("waiting lock").clone();
        let mut still = Vec::new();
        for id in before {
            let record = mail_record(stack, id).await;
            if record["status"] != "sent" {
                if still.is_empty() {
                    *first_unsent.lock().expect("record lock") = Some((id.clone(), record));
                }
                still.push(id);
            }
        }
        let done = still.is_empty();
        *waiting.lock().expect("waiting lock") = still;
        done
    })
    .await;
    let left = waiting.into_inner().expect("waiting lock").len();
    assert!(
        all_sent,
        "{left} mails not sent within {timeout:?}, the first: {:?}",
        first_unsent.into_inner().expect("record lock")
    );
}

/// The auth of a service client of `/`.
pub fn service_auth() -> Value {
    json!({"token": SERVICE_TOKEN})
}

/// A `welcome` request to `<tag><n>@example.com`.
pub fn mail_request(tag: &str, n: usize) -> Value {
    json!({
        "id": uuid::Uuid::new_v4(),
        "template": "welcome",
        "locale": "en",
        "to": {"email": format!("{tag}{n}@example.com"), "name": "Ada Lovelace"},
        "vars": {"login": format!("{tag}{n}")},
        "requested_at": "2026-12-01T20:00:00Z"
    })
}

/// The ids of `requests`, in order.
pub fn ids_of(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The request of each id.
pub fn by_id(requests: &[Value]) -> HashMap<String, Value> {
    ids_of(requests)
        .into_iter()
        .zip(requests.iter().cloned())
        .collect()
}

/// What `/live` shows anonymous viewers of `request`'s recipient: the first character, an
/// ellipsis, the domain.
pub fn masked(request: &Value) -> Value {
    let email = request["to"]["email"].as_str().expect("an address");
    let (local, domain) = email.split_once('@').expect("an address");
    json!({"email": format!("{}\u{2026}@{domain}", &local[..1])})
}

/// `payload["cursor"]`, checked to be 16 decimal digits.
pub fn cursor_of(payload: &Value) -> String {
    let cursor = payload["cursor"].as_str().unwrap_or("").to_string();
    assert!(
        cursor.len() == 16 && cursor.bytes().all(|b| b.is_ascii_digit()),
        "a cursor is 16 decimal digits: {payload}"
    );
    cursor
}

/// Which mailer (`a` or `b`) sent each request id, and how many times each id arrived.
pub fn senders(mails: &[Mail]) -> (HashMap<String, &'static str>, HashMap<String, usize>) {
    let mut by = HashMap::new();
    let mut times: HashMap<String, usize> = HashMap::new();
    for mail in mails {
        let (id, domain) = mail.message_id.split_once('@').unwrap_or(("", ""));
        let mailer = match domain {
            "a.cluster.test" => "a",
            "b.cluster.test" => "b",
            _ => panic!("a Message-ID of neither mailer: {:?}", mail.message_id),
        };
        by.insert(id.to_string(), mailer);
        *times.entry(id.to_string()).or_default() += 1;
    }
    (by, times)
}
