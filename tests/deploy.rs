//! The deploy files: the compose files validate against the Compose Specification's JSON
//! schema, and every `FACTEUR_*` variable they set is a real configuration key.

use crate::support::services::node_peers_available;
use domain::config::Config;
use serde_json::Value;

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
            let (service, name, value) = (field(0), field(1), field(2));
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
