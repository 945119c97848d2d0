use super::document::{SCHEMAS, build};
use super::*;
use serde_json::Value;
use utoipa::OpenApi;

fn default_document() -> Value {
    let config = Config::default();
    build(&Facts::of(&config, config.mailer.listen))
}

/// Every JSON pointer that a `$ref` inside `value` names.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => refs(v, found),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_of_the_document_points_inside_it() {
    let document = default_document();
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for target in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} is not local"));
        assert!(document.pointer(pointer).is_some(), "{target} resolves");
    }
}

#[test]
fn the_payload_schemas_are_those_of_the_openapi_document() {
    let document = default_document();
    let openapi = serde_json::to_value(crate::http::openapi::ApiDoc::openapi()).unwrap();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in [
        "MailRequestDoc",
        "MailAnswerDoc",
        "DeliveryRecordDoc",
        "MailActivityDoc",
        "MailStatusDoc",
        "CatchUpAnswerDoc",
    ] {
        assert_eq!(
            schemas.get(name),
            openapi.pointer(&format!("/components/schemas/{name}")),
            "{name} is copied as it is"
        );
    }
    assert!(
        !schemas.contains_key("HealthDoc"),
        "no schema that no message uses"
    );
    assert!(SCHEMAS.starts_with("#/components/schemas/"));
}

#[test]
fn the_amqp_channels_carry_the_names_the_topology_declares() {
    let mut config = Config::default();
    config.transport.amqp.exchange = "other".into();
    config.transport.amqp.queue = "other.requests".into();
    let document = build(&Facts::of(&config, config.mailer.listen));
    let channels = &document["channels"];
    assert_eq!(channels["mailRequestQueue"]["address"], "other.requests");
    let binding = &channels["mailRequestQueue"]["bindings"]["amqp"];
    assert_eq!(
        binding["x-arguments"]["x-dead-letter-exchange"],
        "other.dlx"
    );
    assert_eq!(binding["x-arguments"]["x-delivery-limit"], 20);
    assert_eq!(binding["x-arguments"].as_object().unwrap().len(), 3);
    assert_eq!(channels["deadQueue"]["address"], "other.dead");
    assert_eq!(
        channels["mailStatusEvents"]["bindings"]["amqp"]["exchange"]["name"],
        "other.events"
    );
}

#[test]
fn live_needs_its_token_in_the_document_only_when_the_mailer_has_one() {
    let mut config = Config::default();
    assert!(
        default_document()["channels"]["live"]
            .get("x-socketio-auth")
            .is_none()
    );
    config.mailer.live_token = Some(domain::Secret::new("a-live-token-for-this-test"));
    let document = build(&Facts::of(&config, config.mailer.listen));
    assert!(
        document["channels"]["live"]
            .get("x-socketio-auth")
            .is_some()
    );
}

#[test]
fn the_page_loads_the_renderer_from_the_paths_this_module_serves() {
    for file in ["index.js", "default.min.css"] {
        assert!(PAGE.contains(&renderer_path(file)), "{file}");
    }
    assert!(!PAGE.contains("<style") && !PAGE.contains("style="));
    assert!(!PAGE.contains("<script>"), "no inline script");
}
