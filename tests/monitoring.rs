//! The monitoring files: Prometheus' configuration and alert rules pass `promtool`, the
//! Grafana provisioning names the dashboard's datasource, and a real Prometheus scraping the
//! running services finds series for every metric that a panel or an alert queries.

use crate::support::stack::{Kind, Stack};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::free_port;
use testkit::skip::{program_available, report};
use testkit::smtp::{Reply, SmtpSink};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
const PROMTOOL_HINT: &str = "apt-get install prometheus";
/// Where RabbitMQ's own exporter (plugin rabbitmq_prometheus) answers when it is enabled.
const RABBITMQ_EXPORTER: &str = "127.0.0.1:15692";

/// Runs `promtool` with `args`: its success and what it printed.
fn promtool(args: &[&str]) -> (bool, String) {
    let output = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn promtool_accepts_the_prometheus_configuration_and_its_alert_rules() {
    const TEST: &str = "promtool_accepts_the_prometheus_configuration_and_its_alert_rules";
    if !program_available("promtool", PROMTOOL_HINT, TEST) {
        return;
    }
    let config = format!("{DEPLOY}/prometheus/prometheus.yml");
    let rules = format!("{DEPLOY}/prometheus/alerts.yml");
    let (ok, text) = promtool(&["check", "config", &config]);
    assert!(ok, "promtool check config: {text}");
    assert!(
        text.contains("1 rule files found"),
        "the rules are loaded: {text}"
    );
    let (ok, text) = promtool(&["check", "rules", &rules]);
    assert!(ok, "promtool check rules: {text}");
    // The contract's alerts, each by name.
    let alerts = alert_names();
    for alert in [
        "FacteurOutboxStuck",
        "FacteurMailsFailing",
        "FacteurSmtpErrors",
        "FacteurServiceDown",
    ] {
        assert!(alerts.contains(alert), "{alert} in {alerts:?}");
    }
    // The same check refuses a rule that does not parse.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n",
    )
    .expect("write");
    let (ok, text) = promtool(&["check", "rules", broken.to_str().expect("a path")]);
    assert!(!ok, "a broken rule passes: {text}");
}

/// The names of the alerts of `deploy/prometheus/alerts.yml`.
fn alert_names() -> BTreeSet<String> {
    std::fs::read_to_string(format!("{DEPLOY}/prometheus/alerts.yml"))
        .expect("alerts.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_string())
        .collect()
}

/// The dashboard, parsed.
fn dashboard() -> Value {
    let text = std::fs::read_to_string(format!("{DEPLOY}/grafana/dashboards/facteur.json"))
        .expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every query of every panel of the dashboard.
fn panel_queries(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("a PromQL expr").to_string())
        .collect()
}

#[test]
fn the_dashboard_queries_the_provisioned_datasource_in_every_panel() {
    let dashboard = dashboard();
    let provisioned = std::fs::read_to_string(format!(
        "{DEPLOY}/grafana/provisioning/datasources/prometheus.yml"
    ))
    .expect("the datasource provisioning");
    let uid = provisioned
        .lines()
        .find_map(|line| line.trim().strip_prefix("uid:"))
        .expect("the datasource has a uid")
        .trim()
        .to_string();
    assert!(
        provisioned.contains("url: http://prometheus:9090"),
        "{provisioned}"
    );
    let provider = std::fs::read_to_string(format!(
        "{DEPLOY}/grafana/provisioning/dashboards/facteur.yml"
    ))
    .expect("the dashboard provisioning");
    assert!(
        provider.contains("path: /var/lib/grafana/dashboards"),
        "{provider}"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut titles = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        titles.push(title.to_string());
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} queries nothing");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], uid.as_str(), "{title}");
        }
    }
    // The contract's panels.
    for wanted in [
        "Mail requests per second",
        "Deliveries per second, by status and template",
        "SMTP send latency",
        "Outbox backlog",
        "Outbox age",
        "RabbitMQ queue depth",
        "Live sockets",
        "Webhook backlog",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(wanted)),
            "{wanted} in {titles:?}"
        );
    }
}

/// PromQL words that are not metric names.
const KEYWORDS: [&str; 22] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "group",
];

/// The metric names `expr` selects: identifiers that are not functions, keywords or label
/// names. Label matchers (`{…}`), ranges (`[…]`), strings and grouping lists are skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| -> usize {
        let mut j = from;
        let mut quoted = None;
        while j < chars.len() {
            match (quoted, chars[j]) {
                (Some(q), c) if c == q => quoted = None,
                (Some(_), '\\') => j += 1,
                (None, '"' | '\'') => quoted = Some(chars[j]),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c == '"' || c == '\'' {
            i = skip_to(i + 1, c);
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let grouping = [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ];
            if grouping.contains(&word.as_str()) && chars.get(next) == Some(&'(') {
                i = skip_to(next + 1, ')');
            } else if chars.get(next) != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |expr: &str| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le) (rate(smtp_send_duration_seconds_bucket{job="x"}[5m])))"#
        ),
        ["smtp_send_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            r#"sum by (job, instance) (rate(deliveries_total{status=~"failed|x"}[15m])) * 60 > 1"#
        ),
        ["deliveries_total"]
    );
    assert_eq!(
        names(r#"up{job=~"a|b"} == 0 or on (job) absent(outbox_pending)"#),
        ["outbox_pending", "up"]
    );
}

/// A Prometheus server of the machine's `prometheus` binary, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with the compose road's configuration and alert rules, its targets
    /// moved to the running services (`users`, `mailer`) and a 1 s scrape interval; without
    /// `rabbitmq`, RabbitMQ's job is left out.
    fn start(users: &str, mailer: &str, rabbitmq: Option<&str>) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = std::fs::read_to_string(format!("{DEPLOY}/prometheus/prometheus.yml"))
            .expect("prometheus.yml");
        let mut config = config
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("\"users:3000\"", &format!("\"{users}\""))
            .replace("\"mailer:8080\"", &format!("\"{mailer}\""));
        match rabbitmq {
            Some(addr) => config = config.replace("\"rabbitmq:15692\"", &format!("\"{addr}\"")),
            None => {
                let at = config
                    .find("  - job_name: rabbitmq")
                    .expect("RabbitMQ's job");
                config.truncate(at);
            }
        }
        for target in ["users:3000", "mailer:8080"] {
            assert!(!config.contains(target), "{target} was moved");
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write");
        std::fs::copy(
            format!("{DEPLOY}/prometheus/alerts.yml"),
            dir.path().join("alerts.yml"),
        )
        .expect("copy the rules");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log");
        let child = Command::new("prometheus")
            .current_dir(dir.path())
            .arg(format!(
                "--config.file={}/prometheus.yml",
                dir.path().display()
            ))
            .arg(format!("--storage.tsdb.path={}/data", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The answer of the query API to `query`, now.
    async fn query(&self, http: &reqwest::Client, query: &str) -> Value {
        let Ok(response) = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
        else {
            return Value::Null;
        };
        response.json().await.unwrap_or(Value::Null)
    }

    /// The rules Prometheus loaded.
    async fn rules(&self, http: &reqwest::Client) -> Vec<Value> {
        let Ok(response) = http.get(format!("{}/api/v1/rules", self.url)).send().await else {
            return Vec::new();
        };
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        answer["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

#[tokio::test]
async fn a_real_prometheus_finds_series_for_every_metric_of_the_dashboard_and_the_alerts() {
    const TEST: &str =
        "a_real_prometheus_finds_series_for_every_metric_of_the_dashboard_and_the_alerts";
    if !program_available("prometheus", PROMTOOL_HINT, TEST) {
        return;
    }
    // Mails of every kind the panels count: sent, and refused at RCPT TO (an SMTP error, a
    // failed delivery, a suppressed address).
    let smtp = SmtpSink::start();
    let stack = Stack::start(Kind::Socketio, smtp).await;
    stack.create_user("watched1").await;
    stack.create_user("watched2").await;
    stack.smtp.wait_for(2, Duration::from_secs(30)).await;
    stack.smtp.fail_next(1, Reply::NoMailbox);
    stack.create_user("watched3").await;
    let failed = testkit::eventually(Duration::from_secs(30), || async {
        stack.metric(&stack.mailer_url(), "smtp_errors_total").await > 0.0
    })
    .await;
    assert!(failed, "the refused recipient is counted");

    let rabbitmq = TcpStream::connect_timeout(
        &RABBITMQ_EXPORTER.parse::<SocketAddr>().expect("an address"),
        Duration::from_secs(1),
    )
    .is_ok();
    if !rabbitmq {
        report(&format!(
            "{TEST}: RabbitMQ's exporter (rabbitmq_prometheus) does not answer at \
             {RABBITMQ_EXPORTER}: the rabbitmq_* queries are checked for syntax only"
        ));
    }
    let users = stack.users_url().replace("http://", "");
    let mailer = stack.mailer_url().replace("http://", "");
    let prometheus = Prometheus::start(&users, &mailer, rabbitmq.then_some(RABBITMQ_EXPORTER));
    let http = reqwest::Client::new();

    // Prometheus loaded the committed alert rules: their queries are checked like panels.
    let loaded = testkit::eventually(Duration::from_secs(30), || async {
        !prometheus.rules(&http).await.is_empty()
    })
    .await;
    assert!(loaded, "Prometheus loaded no rule:\n{}", prometheus.log());
    let rules = prometheus.rules(&http).await;
    let alerts: BTreeSet<String> = rules
        .iter()
        .filter_map(|rule| rule["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(alerts, alert_names(), "every alert of alerts.yml is loaded");
    let mut queries = panel_queries(&dashboard());
    queries.extend(
        rules
            .iter()
            .map(|rule| rule["query"].as_str().expect("a query").to_string()),
    );

    let mut metrics = BTreeSet::new();
    for query in &queries {
        // Each query parses and runs (an empty answer is fine: an alert's condition is false).
        let answer = prometheus.query(&http, query).await;
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        metrics.extend(metric_names(query));
    }
    assert!(metrics.len() >= 8, "{metrics:?}");
    let mut missing = Vec::new();
    for metric in &metrics {
        if metric.starts_with("rabbitmq_") && !rabbitmq {
            continue;
        }
        let found = testkit::eventually(Duration::from_secs(30), || async {
            let answer = prometheus.query(&http, &format!("count({metric})")).await;
            answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
        .await;
        if !found {
            missing.push(metric.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "no series for {missing:?} (queried by a panel or an alert); Prometheus log:\n{}",
        prometheus.log()
    );
    // Both services were scraped as the jobs the alerts name.
    let up = prometheus
        .query(&http, r#"up{job=~"facteur-users|facteur-mailer"} == 1"#)
        .await;
    assert_eq!(
        up["data"]["result"].as_array().map(Vec::len),
        Some(2),
        "{up}"
    );
}
