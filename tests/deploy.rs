//! The deploy files: the compose files validate against the Compose Specification's JSON
//! schema, every `FACTEUR_*` variable they set is a real configuration key, and every secret
//! comes from `deploy/.env` (the files name no secret value).

use crate::support::services::node_peers_available;
use domain::config::{Config, Process};
use serde_json::Value;
use std::collections::BTreeMap;

const JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
const SECTIONS: [&str; 4] = ["transport", "users", "mailer", "log"];

fn validate(file: &str) -> Option<Value> {
    if !node_peers_available("compose files validate") {
        return None;
    }
    let output = std::process::Command::new("node")
        .arg(format!("{JS}/validate-compose.js"))
        .arg(format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR")))
        .env("NODE_PATH", format!("{JS}/node_modules"))
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "validate-compose.js failed (run `npm ci` in tests/js): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("one JSON object"))
}

#[test]
fn compose_files_follow_the_compose_specification() {
    for file in ["docker-compose.yml", "docker-compose.amqp.yml"] {
        let Some(result) = validate(file) else { return };
        assert_eq!(result["valid"], true, "{file}: {}", result["errors"]);
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

#[test]
fn every_facteur_variable_in_the_compose_files_is_a_configuration_key() {
    let mut checked = 0;
    for file in ["docker-compose.yml", "docker-compose.amqp.yml"] {
        let Some(result) = validate(file) else { return };
        let mut by_service: std::collections::BTreeMap<String, Vec<(String, String)>> =
            Default::default();
        for var in result["facteur_env"].as_array().expect("a list") {
            let field = |i: usize| var[i].as_str().expect("a string").to_string();
            let (service, name, value) = (field(0), field(1), interpolate(&field(2)));
            let section = name
                .strip_prefix("FACTEUR_")
                .and_then(|rest| rest.split("__").next())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            assert!(
                SECTIONS.contains(&section.as_str()),
                "{file} {service}: {name} names no section"
            );
            by_service.entry(service).or_default().push((name, value));
            checked += 1;
        }
        // A service's variables together make a valid configuration: an unknown key inside a
        // section is an error (deny_unknown_fields), and so is a bad value.
        for (service, vars) in by_service {
            Config::from_yaml_and_env("{}", vars)
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

/// True for a variable that holds a secret or a URL that may carry one.
fn carries_a_secret(name: &str) -> bool {
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASS",
        "DATABASE",
        "AMQP__URL",
    ]
    .iter()
    .any(|word| name.ends_with(word))
}

#[test]
fn the_compose_files_take_every_secret_from_the_env_file() {
    let mut secrets = 0;
    for file in ["docker-compose.yml", "docker-compose.amqp.yml"] {
        let Some(result) = validate(file) else { return };
        for var in result["env"].as_array().expect("a list") {
            let field = |i: usize| var[i].as_str().expect("a string").to_string();
            let (service, name, value) = (field(0), field(1), field(2));
            if !carries_a_secret(&name) {
                continue;
            }
            secrets += 1;
            // `${NAME:?…}`: Compose refuses to start when deploy/.env does not set it.
            assert!(
                value.contains("${") && value.contains(":?"),
                "{file} {service}: {name} must come from deploy/.env as ${{NAME:?…}}, not {value:?}"
            );
            // In a URL, the password itself is the reference.
            if let Some((_, rest)) = value.split_once("://") {
                let userinfo = rest.split('@').next().unwrap_or_default();
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
                if name.ends_with("TOKEN") || name.ends_with("SECRET") {
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
