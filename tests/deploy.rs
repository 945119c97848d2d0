//! The deploy files: the compose files validate against the Compose Specification's JSON
//! schema, every `FACTEUR_*` variable they set is a real configuration key, and every secret
//! comes from `deploy/.env` (the files name no secret value). The base file is the production
//! road (RabbitMQ, PostgreSQL, Mailpit, Prometheus, Grafana and both services), each service
//! with a healthcheck and every image pinned; the socket.io variant is an override. The cluster
//! variant runs two mailers on one Redis behind an nginx proxy that keeps each client on one
//! mailer.

use crate::support::node_peers_available;
use domain::config::{Config, Process};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use testkit::skip_or_fail;

const JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
const SECTIONS: [&str; 4] = ["transport", "users", "mailer", "log"];
/// The base file, used alone or under one of the overrides.
const BASE: &str = "docker-compose.yml";
/// Every compose file: the base, then the overrides laid over it.
const FILES: [&str; 3] = [BASE, SOCKETIO, "docker-compose.cluster.yml"];
const SOCKETIO: &str = "docker-compose.socketio.yml";
const CLUSTER: &str = "docker-compose.cluster.yml";
const CLUSTER_REDIS_URL: &str = "redis://redis:6379";

fn validate(file: &str) -> Option<Value> {
    if !node_peers_available("compose files validate") {
        return None;
    }
    Some(node_json(
        &[
            format!("{JS}/validate-compose.js"),
            format!("{DEPLOY}/{file}"),
        ],
        "validate-compose.js failed (run `npm ci` in tests/js)",
    ))
}

/// Runs node with `args` and the npm peers of tests/js, and reads the one JSON object it
/// prints; `failure` says what went wrong when node fails.
fn node_json(args: &[String], failure: &str) -> Value {
    let output = std::process::Command::new("node")
        .args(args)
        .env("NODE_PATH", format!("{JS}/node_modules"))
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{failure}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn compose_files_follow_the_compose_specification() {
    for file in FILES {
        let Some(result) = validate(file) else { return };
        assert_eq!(result["valid"], true, "{file}: {}", result["errors"]);
    }
}

/// The service names of a compose document.
fn service_names(doc: &Value) -> Vec<String> {
    doc["services"]
        .as_object()
        .map(|services| services.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_base_file_is_the_production_road_with_a_healthcheck_each_and_pinned_images() {
    let Some(base) = compose_doc(BASE) else {
        return;
    };
    let mut names = service_names(&base);
    names.sort();
    assert_eq!(
        names,
        [
            "grafana",
            "mailer",
            "mailpit",
            "postgres",
            "prometheus",
            "rabbitmq",
            "users"
        ],
        "the services of the production road"
    );
    let services = &base["services"];
    for service in ["users", "mailer"] {
        let env = &services[service]["environment"];
        assert_eq!(
            env["FACTEUR_TRANSPORT__KIND"], "amqp",
            "{service} talks AMQP"
        );
        for (key, scheme) in [
            ("FACTEUR_USERS__DATABASE", "postgres://"),
            ("FACTEUR_MAILER__DATABASE", "postgres://"),
            ("FACTEUR_TRANSPORT__AMQP__URL", "amqp://"),
        ] {
            assert!(
                env[key].as_str().is_some_and(|url| url.starts_with(scheme)),
                "{service}: {key} is {}",
                env[key]
            );
        }
        assert_eq!(
            services[service]["depends_on"]["rabbitmq"]["condition"], "service_healthy",
            "{service} starts once RabbitMQ answers"
        );
    }
    // RabbitMQ's management UI, and its exporter for the queue depth panel.
    assert!(
        services["rabbitmq"]["image"]
            .as_str()
            .is_some_and(|image| image.ends_with("-management")),
        "{}",
        services["rabbitmq"]["image"]
    );
    let plugins = std::fs::read_to_string(format!("{DEPLOY}/rabbitmq/enabled_plugins"))
        .expect("deploy/rabbitmq/enabled_plugins");
    assert!(
        plugins.contains("rabbitmq_management") && plugins.contains("rabbitmq_prometheus"),
        "{plugins}"
    );
    assert!(
        services["rabbitmq"]["volumes"]
            .as_array()
            .expect("volumes")
            .contains(&json!(
                "./rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro"
            ))
    );
    // Prometheus runs the committed configuration and rules; Grafana the committed provisioning.
    let mounts = |service: &str| -> Vec<String> {
        services[service]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    for mount in [
        "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
    ] {
        assert!(mounts("prometheus").contains(&mount.to_string()), "{mount}");
    }
    for mount in [
        "./grafana/provisioning:/etc/grafana/provisioning:ro",
        "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
    ] {
        assert!(mounts("grafana").contains(&mount.to_string()), "{mount}");
    }
}

/// The Cargo version of the workspace's packages, which tags the image built here.
fn workspace_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[test]
fn every_service_of_every_compose_file_has_a_healthcheck_and_a_pinned_image() {
    let Some(base) = compose_doc(BASE) else {
        return;
    };
    let mut checked = 0;
    for file in FILES {
        let Some(doc) = compose_doc(file) else { return };
        for name in service_names(&doc) {
            let service = &doc["services"][name.as_str()];
            let from_base = &base["services"][name.as_str()];
            // An override's service that the base file has inherits what it does not set.
            let field = |key: &str| {
                if service[key].is_null() {
                    from_base[key].clone()
                } else {
                    service[key].clone()
                }
            };
            let test = field("healthcheck")["test"].clone();
            assert!(
                test.as_array().is_some_and(|t| t.len() > 1),
                "{file} {name}: no healthcheck ({test})"
            );
            let image = field("image");
            let image = image
                .as_str()
                .unwrap_or_else(|| panic!("{file} {name}: no image"));
            let (_, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{file} {name}: {image} names no tag"));
            assert!(
                tag != "latest" && tag.starts_with(|c: char| c.is_ascii_digit() || c == 'v'),
                "{file} {name}: {image} is not pinned to a version"
            );
            if image.starts_with("facteur:") {
                assert_eq!(
                    tag,
                    workspace_version(),
                    "{file} {name}: the image built here"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 11, "every service was checked ({checked})");
}

#[test]
fn the_socketio_override_switches_both_services_to_socketio() {
    let Some(over) = compose_doc(SOCKETIO) else {
        return;
    };
    for service in ["users", "mailer"] {
        assert_eq!(
            over["services"][service]["environment"]["FACTEUR_TRANSPORT__KIND"], "socketio",
            "{service}"
        );
    }
}

#[test]
fn the_schema_check_catches_a_broken_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "services:\n  users:\n    image: 12\n    restart_policy: sometimes\n",
    )
    .expect("write");
    if !node_peers_available("the_schema_check_catches_a_broken_file") {
        return;
    }
    let output = std::process::Command::new("node")
        .arg(format!("{JS}/validate-compose.js"))
        .arg(&broken)
        .env("NODE_PATH", format!("{JS}/node_modules"))
        .output()
        .expect("node runs");
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(result["valid"], false);
}

/// The `FACTEUR_*` variables of each service of `result` (a [`validate`] answer), by name,
/// with their `${…}` replaced by the values of `deploy/.env.example`.
fn facteur_env(result: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut by_service: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for var in result["facteur_env"].as_array().expect("a list") {
        let field = |i: usize| var[i].as_str().expect("a string").to_string();
        by_service
            .entry(field(0))
            .or_default()
            .insert(field(1), interpolate(&field(2)));
    }
    by_service
}

#[test]
fn every_facteur_variable_in_the_compose_files_is_a_configuration_key() {
    let Some(base) = validate(BASE) else { return };
    let base = facteur_env(&base);
    let mut checked = 0;
    for file in FILES {
        let Some(result) = validate(file) else { return };
        for (service, vars) in facteur_env(&result) {
            for name in vars.keys() {
                let section = name
                    .strip_prefix("FACTEUR_")
                    .and_then(|rest| rest.split("__").next())
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default();
                assert!(
                    SECTIONS.contains(&section.as_str()),
                    "{file} {service}: {name} names no section"
                );
                checked += 1;
            }
            // What the service runs with: an override's variables laid over the base file's,
            // as Compose merges `environment` (a service the base lacks has only its own).
            let mut merged = if file == BASE {
                BTreeMap::new()
            } else {
                base.get(&service).cloned().unwrap_or_default()
            };
            merged.extend(vars);
            // Together they make a valid configuration: an unknown key inside a section is an
            // error (deny_unknown_fields), and so is a bad value or a bad pair of values.
            Config::from_yaml_and_env("{}", merged)
                .unwrap_or_else(|e| panic!("{file} {service}: {e}"));
        }
    }
    assert!(
        checked > 10,
        "the compose files configure the services through FACTEUR_* variables"
    );
}

#[test]
fn an_unknown_key_is_caught_by_the_same_check() {
    let err = Config::from_yaml_and_env(
        "{}",
        [("FACTEUR_USERS__COLOUR".to_string(), "blue".to_string())],
    )
    .expect_err("an unknown key");
    assert!(err.to_string().contains("colour"), "{err}");
}

/// The variables of `deploy/.env.example`.
fn env_example() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/.env.example"))
        .expect("deploy/.env.example is committed");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// `value` with each `${NAME}` / `${NAME:?message}` replaced as Compose would with the values
/// of `deploy/.env.example`; a reference to a name the example lacks fails the test.
fn interpolate(value: &str) -> String {
    let example = env_example();
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        let reference = &rest[start + 2..end];
        let name = reference.split([':', '?', '-']).next().unwrap_or_default();
        let Some(found) = example.get(name) else {
            panic!("{value}: ${{{name}}} is not in deploy/.env.example");
        };
        out.push_str(found);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// True for a variable that holds a secret or a URL that carries one.
fn carries_a_secret(name: &str) -> bool {
    [
        "TOKEN",
        "SECRET",
        "SUPPRESSION_KEY",
        "PASSWORD",
        "PASS",
        "DATABASE",
        "AMQP__URL",
    ]
    .iter()
    .any(|word| name.ends_with(word))
}

/// True for a URL that may carry a password but need not (the compose network's Redis has none).
fn may_carry_a_credential(name: &str) -> bool {
    name.ends_with("REDIS_URL")
}

#[test]
fn the_compose_files_take_every_secret_from_the_env_file() {
    let mut secrets = 0;
    for file in FILES {
        let Some(result) = validate(file) else { return };
        for var in result["env"].as_array().expect("a list") {
            let field = |i: usize| var[i].as_str().expect("a string").to_string();
            let (service, name, value) = (field(0), field(1), field(2));
            if carries_a_secret(&name) {
                secrets += 1;
                // `${NAME:?…}`: Compose refuses to start when deploy/.env does not set it.
                assert!(
                    value.contains("${") && value.contains(":?"),
                    "{file} {service}: {name} must come from deploy/.env as ${{NAME:?…}}, not {value:?}"
                );
            } else if !may_carry_a_credential(&name) {
                continue;
            }
            // In a URL, the password itself is the reference.
            if let Some((_, rest)) = value.split_once("://") {
                // No `@`, no user information: `redis://redis:6379` names a port, not a password.
                let userinfo = rest.split_once('@').map_or("", |(userinfo, _)| userinfo);
                let password_from_env = userinfo
                    .split_once(':')
                    .is_none_or(|(_, password)| password.starts_with("${"));
                assert!(
                    password_from_env,
                    "{file} {service}: {name} writes a credential into the file"
                );
            }
        }
    }
    assert!(
        secrets >= 8,
        "tokens, session secret and passwords are all checked ({secrets})"
    );
    let ignored = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore"))
        .expect(".gitignore");
    assert!(
        ignored.lines().any(|l| l.trim() == "/deploy/.env"),
        "deploy/.env is never committed"
    );
}

#[test]
fn the_env_example_values_are_refused_as_the_services_would_run_in_compose() {
    let Some(result) = validate("docker-compose.yml") else {
        return;
    };
    let mut by_service: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for var in result["facteur_env"].as_array().expect("a list") {
        let field = |i: usize| var[i].as_str().expect("a string").to_string();
        by_service
            .entry(field(0))
            .or_default()
            .push((field(1), interpolate(&field(2))));
    }
    for (service, process) in [("users", Process::Users), ("mailer", Process::Mailer)] {
        let vars = by_service
            .remove(service)
            .expect("the service is in the file");
        let config = Config::from_yaml_and_env("{}", vars.clone()).expect("a valid configuration");
        let refused = config
            .check_secrets(process)
            .expect_err("the placeholders are refused");
        assert!(
            refused.key.ends_with("token") || refused.key.ends_with("secret"),
            "{refused}"
        );
        // With secrets of one's own, the same file starts.
        let own: Vec<(String, String)> = vars
            .into_iter()
            .map(|(name, value)| {
                if name.ends_with("TOKEN")
                    || name.ends_with("SECRET")
                    || name.ends_with("SUPPRESSION_KEY")
                {
                    (name.clone(), format!("{name}-0123456789abcdef0123456789"))
                } else {
                    (name, value)
                }
            })
            .collect();
        let config = Config::from_yaml_and_env("{}", own).expect("a valid configuration");
        assert_eq!(
            config.check_secrets(process).expect("accepted").warning(),
            None
        );
    }
}

/// A compose file as a JSON tree, aliases resolved. A value tagged `!reset` (emptied when
/// Compose merges the file over another) comes as `{"!reset": value}`, so that a test tells it
/// from a plain value, which the merge would add to the other file's instead.
fn compose_doc(file: &str) -> Option<Value> {
    const SCRIPT: &str = r#"
const fs = require("fs");
const YAML = require("yaml");
const doc = YAML.parseDocument(fs.readFileSync(process.argv[1], "utf8"), { merge: true, logLevel: "error" });
YAML.visit(doc, {
  Node(_, node) {
    if (node.tag === "!reset") return doc.createNode({ "!reset": node.toJSON() });
  },
});
console.log(JSON.stringify(doc.toJS()));
"#;
    if !node_peers_available("the compose files are read") {
        return None;
    }
    Some(node_json(
        &["-e".into(), SCRIPT.into(), format!("{DEPLOY}/{file}")],
        &format!("{file} does not parse"),
    ))
}

/// The host ports a service publishes once `over` is laid over `base`: lists are added
/// together, and `!reset` empties the base's.
fn published(base: &Value, over: &Value, service: &str) -> Vec<String> {
    let mut ports: Vec<Value> = base["services"][service]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match &over["services"][service]["ports"] {
        Value::Null => {}
        Value::Array(more) => ports.extend(more.iter().cloned()),
        reset => {
            assert_eq!(reset["!reset"], json!([]), "{service}: ports {reset}");
            ports.clear();
        }
    }
    ports
        .iter()
        .map(|port| {
            let port = port.as_str().expect("ports written as \"HOST:CONTAINER\"");
            port.split(':').next().expect("a host port").to_string()
        })
        .collect()
}

#[test]
fn the_cluster_override_runs_two_mailers_on_one_redis_behind_the_proxy() {
    let (Some(base), Some(cluster)) = (compose_doc(BASE), compose_doc(CLUSTER)) else {
        return;
    };
    let services = &cluster["services"];
    let base_mailer = &base["services"]["mailer"];

    let redis = &services["redis"];
    assert_eq!(redis["image"], "redis:7.4.1");
    assert_eq!(
        redis["healthcheck"]["test"],
        json!(["CMD", "redis-cli", "ping"])
    );
    assert!(redis["volumes"].is_null(), "Redis keeps nothing");
    assert!(
        redis["ports"].is_null(),
        "Redis is for the compose network only"
    );

    // Both mailers: the same Redis URL, and on mailer-2 everything else as on the mailer.
    let mut mailer_env = base_mailer["environment"]
        .as_object()
        .expect("the mailer's environment")
        .clone();
    let override_env = services["mailer"]["environment"]
        .as_object()
        .expect("the override sets the mailer's environment");
    mailer_env.extend(override_env.clone());
    assert_eq!(
        mailer_env["FACTEUR_MAILER__CLUSTER__REDIS_URL"], CLUSTER_REDIS_URL,
        "the mailer joins the cluster"
    );
    let second = &services["mailer-2"];
    assert_eq!(
        second["environment"],
        Value::Object(mailer_env),
        "mailer-2 runs with the mailer's environment, the Redis URL included"
    );
    for key in ["image", "command", "healthcheck", "stop_grace_period"] {
        assert_eq!(second[key], base_mailer[key], "mailer-2's {key}");
    }
    for mailer in ["mailer", "mailer-2"] {
        assert_eq!(
            services[mailer]["depends_on"]["redis"]["condition"], "service_healthy",
            "{mailer} starts once Redis answers"
        );
    }
    for (service, condition) in base_mailer["depends_on"].as_object().expect("depends_on") {
        assert_eq!(
            &second["depends_on"][service], condition,
            "mailer-2 waits for {service} as the mailer does"
        );
    }

    // The proxy alone publishes 8080, and balances exactly the services that run a mailer.
    let proxy = &services["proxy"];
    assert!(
        proxy["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("nginx:")),
        "{}",
        proxy["image"]
    );
    assert!(
        proxy["volumes"]
            .as_array()
            .expect("volumes")
            .contains(&json!("./nginx-cluster.conf:/etc/nginx/nginx.conf:ro")),
        "the proxy runs deploy/nginx-cluster.conf, read-only"
    );
    let mut names: Vec<&String> = base["services"]
        .as_object()
        .expect("services")
        .keys()
        .chain(services.as_object().expect("services").keys())
        .collect();
    names.sort();
    names.dedup();
    let publishers: Vec<&str> = names
        .iter()
        .filter(|name| published(&base, &cluster, name).contains(&"8080".to_string()))
        .map(|name| name.as_str())
        .collect();
    assert_eq!(publishers, ["proxy"], "who publishes 8080");
    assert!(
        published(&base, &cluster, "mailer-2").is_empty(),
        "mailer-2 is reached through the proxy only"
    );
    let mut mailers: Vec<String> = names
        .iter()
        .filter(|name| {
            let command = &services[name.as_str()]["command"];
            let command = if command.is_null() {
                &base["services"][name.as_str()]["command"]
            } else {
                command
            };
            *command == json!(["mailer"])
        })
        .map(|name| format!("{name}:8080"))
        .collect();
    mailers.sort();
    let conf = nginx_conf();
    let http = conf.one("http");
    let mut upstream: Vec<String> = http
        .one("upstream")
        .all("server")
        .map(|server| server.args[0].clone())
        .collect();
    upstream.sort();
    assert_eq!(upstream, mailers, "the proxy's upstream is every mailer");
    for mailer in ["mailer", "mailer-2"] {
        assert_eq!(
            proxy["depends_on"][mailer]["condition"], "service_healthy",
            "the proxy starts once {mailer} answers"
        );
    }

    // The users service goes through the proxy too: over websocket, it stays where it landed.
    assert_eq!(
        services["users"]["environment"]["FACTEUR_TRANSPORT__SOCKETIO__URL"],
        "http://proxy:8080"
    );
    assert_eq!(
        services["users"]["depends_on"]["proxy"]["condition"],
        "service_healthy"
    );
}

/// One directive of an nginx configuration: name, arguments, and the directives of its block.
struct Directive {
    name: String,
    args: Vec<String>,
    block: Vec<Directive>,
}

impl Directive {
    /// The directives called `name` in this one's block.
    fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Directive> + use<'a> {
        let name = name.to_string();
        self.block.iter().filter(move |d| d.name == name)
    }

    /// The one directive called `name` in this one's block.
    fn one(&self, name: &str) -> &Directive {
        let mut found = self.all(name);
        let one = found
            .next()
            .unwrap_or_else(|| panic!("{} has no {name}", self.name));
        assert!(found.next().is_none(), "{} has two {name}", self.name);
        one
    }

    /// The arguments of the one directive called `name`.
    fn args_of(&self, name: &str) -> Vec<&str> {
        self.one(name).args.iter().map(String::as_str).collect()
    }
}

enum Token {
    Word(String),
    End,
    Open,
    Close,
}

/// The words and punctuation of an nginx configuration, comments left out.
fn nginx_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if word.is_empty() => {
                chars.by_ref().find(|&c| c == '\n');
            }
            '\'' | '"' if word.is_empty() => {
                let quoted: String = chars.by_ref().take_while(|&q| q != c).collect();
                tokens.push(Token::Word(quoted));
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut tokens);
                tokens.push(match c {
                    ';' => Token::End,
                    '{' => Token::Open,
                    _ => Token::Close,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

/// The directives up to the end of the current block.
fn nginx_block(tokens: &mut impl Iterator<Item = Token>) -> Vec<Directive> {
    let mut block = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut directive = |words: &mut Vec<String>, inner: Vec<Directive>| {
        let mut words = std::mem::take(words).into_iter();
        let name = words.next().expect("a directive has a name");
        block.push(Directive {
            name,
            args: words.collect(),
            block: inner,
        });
    };
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(word) => words.push(word),
            Token::End => directive(&mut words, Vec::new()),
            Token::Open => {
                let inner = nginx_block(tokens);
                directive(&mut words, inner);
            }
            Token::Close => break,
        }
    }
    assert!(words.is_empty(), "a directive without `;`: {words:?}");
    block
}

/// The text of `deploy/nginx-cluster.conf`.
fn nginx_conf_text() -> String {
    std::fs::read_to_string(format!("{DEPLOY}/nginx-cluster.conf"))
        .expect("deploy/nginx-cluster.conf")
}

/// `deploy/nginx-cluster.conf`, parsed.
fn nginx_conf() -> Directive {
    Directive {
        name: "the main context".to_string(),
        args: Vec::new(),
        block: nginx_block(&mut nginx_tokens(&nginx_conf_text()).into_iter()),
    }
}

/// An nginx time (`90`, `90s`, `2m`) in seconds.
fn nginx_seconds(time: &str) -> u64 {
    let (number, unit) = match time.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (time.strip_suffix('s').unwrap_or(time), 1),
    };
    number
        .parse::<u64>()
        .expect("a whole number of seconds or minutes")
        * unit
}

#[test]
fn the_cluster_proxy_keeps_polling_clients_on_one_mailer_and_passes_websockets() {
    let conf = nginx_conf();
    let http = conf.one("http");
    let upstream = http.one("upstream");
    let name = upstream.args[0].as_str();
    assert_eq!(
        upstream.all("server").count(),
        2,
        "two mailers behind the proxy"
    );
    // Every request of one client to one mailer: a long-polling session lives in one mailer.
    let by_address = upstream.all("ip_hash").next().is_some()
        || upstream.all("hash").any(|hash| {
            matches!(
                hash.args.first().map(String::as_str),
                Some("$remote_addr" | "$binary_remote_addr")
            )
        });
    assert!(
        by_address,
        "upstream {name} keeps each client on one mailer"
    );

    let server = http.one("server");
    assert_eq!(server.args_of("listen"), ["8080"]);
    let location = server
        .all("location")
        .find(|location| location.args == ["/"])
        .expect("location /");
    assert_eq!(
        location.args_of("proxy_pass"),
        [format!("http://{name}").as_str()]
    );
    assert_eq!(
        location.args_of("proxy_http_version"),
        ["1.1"],
        "websockets need HTTP/1.1 to the mailers"
    );
    let header = |header: &str| -> String {
        let mut set = location
            .all("proxy_set_header")
            .filter(|d| d.args[0].eq_ignore_ascii_case(header));
        let value = set
            .next()
            .unwrap_or_else(|| panic!("no proxy_set_header {header}"));
        assert!(set.next().is_none(), "two proxy_set_header {header}");
        assert_eq!(
            value.args.len(),
            2,
            "proxy_set_header {header}: {:?}",
            value.args
        );
        value.args[1].clone()
    };
    // The websocket handshake reaches the mailer as one.
    assert_eq!(
        header("Upgrade"),
        "$http_upgrade",
        "the Upgrade header is passed on"
    );
    let connection = header("Connection");
    if connection != "upgrade" {
        let map = http
            .all("map")
            .find(|map| map.args == ["$http_upgrade", connection.as_str()])
            .unwrap_or_else(|| panic!("{connection} is a map of $http_upgrade"));
        assert_eq!(map.args_of("default"), ["upgrade"]);
    }
    // The browser's Host, port included: the mailer's socket.io origin check compares a
    // browser's Origin with it (`$host` drops the port, and every browser would get 403).
    assert_eq!(
        header("Host"),
        "$http_host",
        "the browser's Host is passed on"
    );
    // An idle socket.io connection is quiet for up to its ping interval and timeout (45 s).
    let read = nginx_seconds(location.args_of("proxy_read_timeout")[0]);
    assert!(read >= 60, "proxy_read_timeout {read} s");
}

#[test]
fn nginx_accepts_the_cluster_proxy_configuration() {
    const TEST: &str = "nginx_accepts_the_cluster_proxy_configuration";
    // `nginx --version` is not an nginx option: `-v` is.
    let installed = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        skip_or_fail(TEST, "nginx is missing (apt-get install nginx)");
        return;
    }
    // The mailers' names resolve on the compose network only; nginx looks them up at start.
    let mut text = nginx_conf_text();
    for (name, port) in [("mailer", 8080), ("mailer-2", 8081)] {
        let server = format!("server {name}:8080;");
        assert!(text.contains(&server), "the proxy names {name}");
        text = text.replace(&server, &format!("server 127.0.0.1:{port};"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, text).expect("write");
    let output = std::process::Command::new("nginx")
        .arg("-t")
        .arg("-q")
        .args(["-e", "stderr", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("nginx runs");
    assert!(
        output.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
