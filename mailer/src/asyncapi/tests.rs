use super::blocks::SCHEMAS;
use super::document::build;
use super::*;
use serde_json::Value;

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
fn the_payload_schemas_are_the_derived_ones_and_only_those_a_message_reaches() {
    let document = default_document();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let derived = super::schemas::payloads(&[]);
    for name in [
        "MailRequest",
        "MailAnswer",
        "DeliveryRecord",
        "MailActivityEvent",
        "MailStatusEvent",
        "CatchUpAnswer",
        "SocketAuth",
    ] {
        assert_eq!(
            schemas.get(name),
            derived.get(name),
            "{name} is taken as derived"
        );
    }
    assert!(
        schemas["MailRequest"]["allOf"][1]["oneOf"].is_array(),
        "the mail request carries each template's variables"
    );
    assert!(
        !schemas.contains_key("Health"),
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
fn the_page_shows_every_channel_operation_message_and_schema_without_a_script() {
    let document = default_document();
    let html = page::render(&document);
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("style="), "no inline style");
    for section in ["channels", "operations"] {
        for (key, _) in document[section].as_object().unwrap() {
            assert!(
                html.contains(&format!("<code>{key}</code>")),
                "{section} {key}"
            );
        }
    }
    for (key, message) in document["components"]["messages"].as_object().unwrap() {
        assert!(html.contains(&format!("id=\"message-{key}\"")), "{key}");
        if let Some(event) = message["name"].as_str() {
            assert!(html.contains(&format!("<code>{event}</code>")), "{event}");
        }
    }
    for (name, _) in document["components"]["schemas"].as_object().unwrap() {
        assert!(html.contains(&format!("id=\"schema-{name}\"")), "{name}");
    }
    assert!(html.contains("facteur.mail.requests"));
}
