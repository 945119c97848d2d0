//! `/asyncapi` as HTML, rendered on the server from the document itself: its servers,
//! channels, operations, messages and payload schemas, linked to one another by anchors.
//! The page holds no script; descriptions keep their Markdown's code spans and local links.

use minijinja::Environment;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The page's template, autoescaped by its `.html` name.
static PAGE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_filter("prose", |text: String| {
        minijinja::Value::from_safe_string(prose(&text))
    });
    env.add_template("asyncapi.html", include_str!("../../static/asyncapi.html"))
        .expect("the embedded AsyncAPI page parses");
    env
});

/// The page of `document`.
pub fn render(document: &Value) -> String {
    let view = view(document);
    PAGE.get_template("asyncapi.html")
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&view))))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the AsyncAPI page could not be rendered");
            String::from("The AsyncAPI page could not be rendered; see /asyncapi.json.")
        })
}

/// What the template shows, in the document's order.
fn view(document: &Value) -> Value {
    let entries = |pointer: &str| -> Vec<(String, Value)> {
        match document.pointer(pointer) {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Vec::new(),
        }
    };
    let servers: Vec<Value> = entries("/servers")
        .into_iter()
        .map(|(key, server)| json!({"key": key, "server": server}))
        .collect();
    let channels: Vec<Value> = entries("/channels")
        .into_iter()
        .map(|(key, channel)| {
            let messages: Vec<Value> = object(&channel["messages"])
                .iter()
                .map(|(k, m)| json!({"key": k, "target": target(m)}))
                .collect();
            json!({
                "key": key,
                "channel": channel,
                "messages": messages,
                "auth": channel.get("x-socketio-auth").map(target),
                "parameters": pretty(channel.get("parameters")),
                "bindings": pretty(channel.get("bindings")),
            })
        })
        .collect();
    let operations: Vec<Value> = entries("/operations")
        .into_iter()
        .map(|(key, operation)| {
            let targets = |list: &Value| -> Vec<Value> {
                list.as_array()
                    .map(|l| l.iter().map(target).collect())
                    .unwrap_or_default()
            };
            json!({
                "key": key,
                "operation": operation,
                "channel": target(&operation["channel"]),
                "messages": targets(&operation["messages"]),
                "replies": targets(&operation["reply"]["messages"]),
                "bindings": pretty(operation.get("bindings")),
            })
        })
        .collect();
    let messages: Vec<Value> = entries("/components/messages")
        .into_iter()
        .map(|(key, message)| {
            let payload = message.get("payload");
            json!({
                "key": key,
                "message": message,
                "payload": payload.map(describe),
            })
        })
        .collect();
    let schemas: Vec<Value> = entries("/components/schemas")
        .into_iter()
        .map(|(name, schema)| {
            json!({
                "name": name,
                "description": schema_description(&schema),
                "kind": describe(&schema),
                "properties": properties(&schema),
                "json": pretty(Some(&schema)),
            })
        })
        .collect();
    json!({
        "info": document["info"],
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "messages": messages,
        "schemas": schemas,
    })
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn pretty(value: Option<&Value>) -> Option<String> {
    value.map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
}

/// Where a `{"$ref": "#/…"}` points: the page's anchor and the name it shows.
fn target(reference: &Value) -> Value {
    let pointer = reference["$ref"].as_str().unwrap_or("");
    let parts: Vec<&str> = pointer.trim_start_matches("#/").split('/').collect();
    let (anchor, label) = match parts.as_slice() {
        ["channels", channel] => (format!("channel-{channel}"), channel.to_string()),
        ["channels", channel, "messages", key] => {
            (format!("channel-{channel}"), format!("{channel} / {key}"))
        }
        ["components", "messages", name] => (format!("message-{name}"), name.to_string()),
        ["components", "schemas", name] => (format!("schema-{name}"), name.to_string()),
        _ => (String::new(), pointer.to_string()),
    };
    json!({"anchor": anchor, "label": label})
}

/// A schema in a few words: its type, its format or values, and the schemas it names.
fn describe(schema: &Value) -> Value {
    if let Some(reference) = schema.get("$ref") {
        return json!({"text": "", "refs": [target(&json!({"$ref": reference}))]});
    }
    let mut refs = Vec::new();
    let mut words = Vec::new();
    for (key, joiner) in [
        ("oneOf", "one of"),
        ("anyOf", "any of"),
        ("allOf", "all of"),
    ] {
        if let Some(items) = schema.get(key).and_then(Value::as_array) {
            words.push(joiner.to_string());
            for item in items {
                if item.get("$ref").is_some() {
                    refs.push(target(item));
                } else {
                    words.push(format!(
                        "({})",
                        describe(item)["text"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    match &schema["type"] {
        Value::String(t) => words.push(t.clone()),
        Value::Array(types) => words.push(
            types
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        _ => {}
    }
    if let Some(format) = schema["format"].as_str() {
        words.push(format!("({format})"));
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        words.push(format!("one of {}", values.join(", ")));
    }
    if let Some(value) = schema.get("const") {
        words.push(format!("always {value}"));
    }
    if let Some(items) = schema.get("items") {
        let inner = describe(items);
        words.push(format!("of {}", inner["text"].as_str().unwrap_or("")));
        refs.extend(inner["refs"].as_array().cloned().unwrap_or_default());
    }
    json!({"text": words.join(" ").trim().to_string(), "refs": refs})
}

fn schema_description(schema: &Value) -> Option<String> {
    schema["description"].as_str().map(str::to_string)
}

/// The properties of an object schema (or of the object that an `allOf` starts with), each
/// with its type, whether it is required and its description.
fn properties(schema: &Value) -> Vec<Value> {
    let object = match schema.get("allOf").and_then(Value::as_array) {
        Some(items) => items.first().cloned().unwrap_or(Value::Null),
        None => schema.clone(),
    };
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    object["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, property)| {
                    json!({
                        "name": name,
                        "required": required.contains(&name.as_str()),
                        "kind": describe(property),
                        "description": schema_description(property),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A description as HTML: escaped, paragraphs at blank lines, Markdown code spans as
/// `<code>` and Markdown links to this mailer's own paths or anchors as links.
fn prose(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            let mut html = String::new();
            for (i, part) in paragraph.split('`').enumerate() {
                if i % 2 == 1 {
                    html.push_str("<code>");
                    html.push_str(&escape(part));
                    html.push_str("</code>");
                } else {
                    html.push_str(&local_links(part));
                }
            }
            format!("<p>{html}</p>")
        })
        .collect()
}

/// Escapes `text`, turning each `[label](/path)` into a link.
fn local_links(text: &str) -> String {
    let mut html = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some((label, after)) = rest[open + 1..].split_once("](") else {
            break;
        };
        let Some((href, tail)) = after.split_once(')') else {
            break;
        };
        if label.contains('[') || !(href.starts_with('/') || href.starts_with('#')) {
            html.push_str(&escape(&rest[..=open]));
            rest = &rest[open + 1..];
            continue;
        }
        html.push_str(&escape(&rest[..open]));
        html.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            escape(href),
            escape(label)
        ));
        rest = tail;
    }
    html.push_str(&escape(rest));
    html
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_escapes_and_keeps_code_spans_and_local_links() {
        let html = prose("a `<b>` [docs](/docs) [far](https://x.invalid) <i>\n\nnext");
        assert_eq!(
            html,
            "<p>a <code>&lt;b&gt;</code> <a href=\"/docs\">docs</a> [far](https://x.invalid) &lt;i&gt;</p><p>next</p>"
        );
    }
}
