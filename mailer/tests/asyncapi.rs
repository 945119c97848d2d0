//! `/asyncapi.json` and `/asyncapi`: the document passes the official AsyncAPI parser, names
//! every socket.io event and AMQP name that docs/CONTRACT.md names, with the payload schemas
//! of `/openapi.json`; the page, rendered by the mailer with no script, names them too and
//! shows in headless Chromium from the mailer alone; neither needs a token.

use crate::common::chromium::Browser;
use crate::common::{TestApp, node_package, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

async fn fetch_document(app: &TestApp) -> Value {
    let response = app
        .http
        .get(format!("{}/asyncapi.json", app.base))
        .send()
        .await
        .expect("the mailer answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a JSON document")
}

/// Runs mailer/tests/js/asyncapi-parse.js over `document`: its one JSON line.
async fn parse_with_node(modules: &Path, document: &Value) -> Value {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let file = dir.path().join("asyncapi.json");
    std::fs::write(&file, document.to_string()).expect("the document is written");
    let file = file.to_string_lossy();
    let stdout = crate::socketio_js::run_node(modules, "asyncapi-parse.js", &[&file]).await;
    stdout
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("a JSON line from the parser script: {stdout}"))
}

#[tokio::test]
async fn the_asyncapi_document_passes_the_official_parser_without_an_error() {
    let test = "the_asyncapi_document_passes_the_official_parser_without_an_error";
    let Some(modules) = node_package(test, "@asyncapi/parser") else {
        return;
    };
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let report = parse_with_node(&modules, &document).await;

    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(report["parsed"], true, "{report}");
    let errors: Vec<&Value> = report["diagnostics"]
        .as_array()
        .expect("a list of diagnostics")
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "the parser's errors: {errors:#?}");
}

/// The section of `contract` under the heading that starts with `heading`, to the next
/// heading of the same level.
fn section<'a>(contract: &'a str, heading: &str) -> &'a str {
    let start = contract
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("docs/CONTRACT.md has a heading {heading:?}"));
    let level = heading.split(' ').next().unwrap_or("##");
    let body = &contract[start + 1..];
    let end = body[1..]
        .find(&format!("\n{level} "))
        .map_or(body.len(), |i| i + 1);
    &body[..end]
}

/// The `backticked` words of `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The socket.io events of the contract: the backticked names in the `event` column of its
/// tables, and every "the event `name`" of its prose.
fn contract_events(contract: &str) -> BTreeSet<String> {
    let mut events = BTreeSet::new();
    // Outside a table: `None`; inside: the event column, if its header row has one.
    let mut table: Option<Option<usize>> = None;
    for line in contract.lines() {
        if !line.starts_with('|') {
            table = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        match table {
            None => table = Some(cells.iter().position(|c| c.trim().starts_with("event"))),
            Some(Some(column)) => {
                if let Some(cell) = cells.get(column) {
                    events.extend(backticked(cell));
                }
            }
            Some(None) => {}
        }
    }
    for (i, _) in contract.match_indices("the event `") {
        let rest = &contract[i + "the event `".len()..];
        if let Some(end) = rest.find('`') {
            events.insert(rest[..end].to_string());
        }
    }
    events
}

/// The AMQP names of the contract's AMQP section (exchanges, queues, routing keys, with
/// `<x>` written as AsyncAPI's `{x}`) and its queue arguments (`x-…: value`).
fn contract_amqp(contract: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let is_name = |w: &str| {
        w.contains('.')
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '<' || c == '>')
    };
    let mut names = BTreeSet::new();
    let mut arguments = BTreeSet::new();
    for word in backticked(section(contract, "## AMQP")) {
        if word.starts_with("x-") && word.contains(": ") {
            arguments.insert(word);
        } else if is_name(&word) {
            names.insert(word.replace('<', "{").replace('>', "}"));
        }
    }
    (names, arguments)
}

/// The event names, AMQP names and queue arguments that `document` holds.
fn document_names(document: &Value) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let events = document["components"]["messages"]
        .as_object()
        .expect("components.messages")
        .values()
        .filter_map(|m| text(&m["name"]))
        .collect();
    let mut names = BTreeSet::new();
    let mut arguments = BTreeSet::new();
    for channel in document["channels"].as_object().expect("channels").values() {
        let amqp = &channel["bindings"]["amqp"];
        if amqp.is_null() {
            continue;
        }
        names.extend(text(&channel["address"]));
        names.extend(text(&amqp["exchange"]["name"]));
        names.extend(text(&amqp["queue"]["name"]));
        names.extend(text(&amqp["x-bound-to"]["exchange"]));
        if let Some(args) = amqp["x-arguments"].as_object() {
            for (key, value) in args {
                let value = text(value).unwrap_or_else(|| value.to_string());
                arguments.insert(format!("{key}: {value}"));
            }
        }
    }
    (events, names, arguments)
}

#[tokio::test]
async fn the_asyncapi_document_names_every_event_and_amqp_name_of_the_contract() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONTRACT.md");
    let contract = std::fs::read_to_string(&path).expect("docs/CONTRACT.md is readable");
    let events = contract_events(&contract);
    let (amqp_names, arguments) = contract_amqp(&contract);
    // The extraction itself is checked, so that a contract laid out differently cannot
    // make this test pass on nothing.
    for expected in ["send-mail", "get-mail", "join", "mail-status", "catch-up"] {
        assert!(events.contains(expected), "{expected} in {events:?}");
    }
    for expected in ["facteur.mail.requests", "mail.request", "mail.{status}"] {
        assert!(
            amqp_names.contains(expected),
            "{expected} in {amqp_names:?}"
        );
    }
    assert_eq!(arguments.len(), 3, "{arguments:?}");
    let app = spawn_app().await;

    let document = fetch_document(&app).await;

    let (doc_events, doc_names, doc_arguments) = document_names(&document);
    let missing: Vec<&String> = events.difference(&doc_events).collect();
    assert!(
        missing.is_empty(),
        "events missing from the document: {missing:?}"
    );
    let missing: Vec<&String> = amqp_names.difference(&doc_names).collect();
    assert!(
        missing.is_empty(),
        "AMQP names missing from the document: {missing:?}"
    );
    assert_eq!(
        arguments, doc_arguments,
        "the request queue's arguments, exactly"
    );
}

#[tokio::test]
async fn the_asyncapi_page_is_html_under_a_policy_without_eval_naming_every_event_and_amqp_name() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONTRACT.md");
    let contract = std::fs::read_to_string(&path).expect("docs/CONTRACT.md is readable");
    let (amqp_names, _) = contract_amqp(&contract);
    let events = contract_events(&contract);
    assert!(events.contains("send-mail") && amqp_names.contains("mail.request"));
    let app = spawn_app().await;

    let response = app
        .http
        .get(format!("{}/asyncapi", app.base))
        .send()
        .await
        .expect("the mailer answers");

    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    let policy = header("content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    for loose in ["unsafe-eval", "unsafe-inline", "script-src"] {
        assert!(!policy.contains(loose), "no {loose}: {policy}");
    }
    let html = response.text().await.expect("a page");
    assert!(!html.contains("<script"), "the page runs no script");
    let code = |name: &String| format!("<code>{name}</code>");
    let missing: Vec<&String> = events.iter().filter(|e| !html.contains(&code(e))).collect();
    assert!(
        missing.is_empty(),
        "events missing from the page: {missing:?}"
    );
    let missing: Vec<&String> = amqp_names
        .iter()
        .filter(|n| !html.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "AMQP names missing from the page: {missing:?}"
    );
}

#[tokio::test]
async fn the_asyncapi_payload_schemas_are_those_of_the_openapi_document() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    let openapi: Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("the mailer answers")
        .json()
        .await
        .expect("a JSON document");

    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("components.schemas");

    assert!(schemas.len() >= 10, "{:?}", schemas.keys());
    for (name, schema) in schemas {
        assert_eq!(
            Some(schema),
            openapi.pointer(&format!("/components/schemas/{name}")),
            "{name} is the schema /openapi.json has"
        );
    }
}

#[tokio::test]
async fn the_asyncapi_page_renders_in_headless_chromium_loading_only_from_the_mailer() {
    let test = "the_asyncapi_page_renders_in_headless_chromium_loading_only_from_the_mailer";
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let app = spawn_app().await;
    let expected = [
        "Facteur mailer events",
        "send-mail",
        "mail-status",
        "catch-up",
        "facteur.mail.requests",
    ];

    browser.goto(&format!("{}/asyncapi", app.base)).await;
    let text = browser
        .wait_for_text(30, |t| expected.iter().all(|e| t.contains(e)))
        .await;
    let urls = browser.fetched_urls().await;
    // The stylesheet applies only if the policy let it load; the page holds no script.
    let page = browser
        .run(
            "return {scripts: document.scripts.length, \
             width: getComputedStyle(document.body).maxWidth}",
            json!([]),
        )
        .await;
    browser.close().await;

    for e in expected {
        assert!(text.contains(e), "the page shows {e}: {text}");
    }
    assert!(
        urls.iter().any(|u| u.ends_with("/asyncapi.css")),
        "the page loaded its style: {urls:?}"
    );
    let foreign: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&format!("{}/", app.base)))
        .collect();
    assert!(
        foreign.is_empty(),
        "requests outside the mailer: {foreign:?}"
    );
    assert_eq!(page["scripts"], 0, "{page}");
    assert_ne!(page["width"], "none", "the stylesheet applies: {page}");
}

#[tokio::test]
async fn the_asyncapi_routes_need_no_token_and_the_docs_link_them() {
    let app = spawn_app().await;
    let get = |path: String| {
        let request = app.http.get(format!("{}{path}", app.base));
        async move { request.send().await.expect("the mailer answers") }
    };
    let answers = [
        ("/asyncapi.json".to_string(), "application/json"),
        ("/asyncapi".to_string(), "text/html"),
        ("/asyncapi.css".to_string(), "text/css"),
    ];

    for (path, content_type) in answers {
        let response = get(path.clone()).await;
        assert_eq!(response.status(), 200, "{path} without a token");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        if path == "/asyncapi" {
            let policy = header("content-security-policy");
            assert!(policy.contains("default-src 'none'"), "{policy}");
            assert!(policy.contains("style-src 'self'"), "{policy}");
            assert!(!policy.contains("'unsafe-inline'"), "{policy}");
            assert!(!policy.contains("'unsafe-eval'"), "{policy}");
        }
    }
    assert_eq!(
        get("/mails".into()).await.status(),
        401,
        "the rest still needs it"
    );
    let openapi: Value = get("/openapi.json".into()).await.json().await.unwrap();
    assert!(
        openapi["paths"]["/asyncapi.json"].is_object(),
        "listed in /openapi.json"
    );
    assert!(openapi["paths"]["/asyncapi"].is_object());
    let description = openapi["info"]["description"].as_str().unwrap_or("");
    assert!(
        description.contains("](/asyncapi)"),
        "/docs links the page: {description}"
    );
    let live = get("/".into()).await.text().await.unwrap();
    assert!(
        live.contains("href=\"/asyncapi\""),
        "the live page links it"
    );
}
