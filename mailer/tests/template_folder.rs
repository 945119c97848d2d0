//! `mailer.templates_dir`: a folder that adds templates and overrides built-in files, its
//! layouts and the brand, the locale fallback, the check that refuses a broken set at start
//! (the real binary: exit 2, one line naming the file and line) and the reloads (SIGHUP, and
//! a change in the folder) that swap in a valid set and keep the running one otherwise.

use crate::common::{fast_options, smtp_config, spawn_with, start_refused, test_config};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use testkit::smtp::SmtpSink;

const CATALOG: &str = r#"{
  "templates": [
    {
      "name": "order_shipped",
      "description": "Sent when an order leaves the warehouse.",
      "locales": ["fr", "en", "de"],
      "vars": [
        {"name": "order_id", "description": "The order's number.", "sample": "A-1042"},
        {"name": "tracking_url", "description": "Where the parcel can be followed.", "sample": "https://track.example/A-1042"}
      ]
    }
  ]
}
"#;

const LAYOUT_HTML: &str = r#"<!doctype html>
<html lang="{{ locale }}"><body>
<div class="header"><h1>{{ brand.name }} header</h1></div>
{% block body %}{% endblock %}
<p class="footer">{{ brand.name }} footer</p>
</body></html>
"#;

const LAYOUT_TXT: &str = "{% block body %}{% endblock %}\n-- {{ brand.name }}\n";

/// The files of `order_shipped` in `locale`, with `subject` as its subject line.
fn order_shipped(locale: &str, subject: &str) -> Vec<(String, String)> {
    let hello = match locale {
        "fr" => "Bonjour",
        "de" => "Hallo",
        _ => "Hello",
    };
    vec![
        (
            format!("order_shipped.{locale}.subject"),
            subject.to_string(),
        ),
        (
            format!("order_shipped.{locale}.txt"),
            format!(
                "{{% extends \"layout.txt\" %}}{{% block body %}}{hello} {{{{ name }}}},\n{{{{ order_id }}}}: {{{{ tracking_url }}}}\n{{% endblock %}}\n"
            ),
        ),
        (
            format!("order_shipped.{locale}.html"),
            format!(
                "{{% extends \"layout.html\" %}}\n{{% block body %}}\n<p>{hello} {{{{ name }}}},</p>\n<p><a href=\"{{{{ tracking_url }}}}\">{{{{ order_id }}}}</a></p>\n{{% endblock %}}\n"
            ),
        ),
    ]
}

/// A folder with the catalog, the layouts and `order_shipped` in fr, en and de.
fn shop_folder(dir: &Path, en_subject: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = vec![
        ("catalog.json".to_string(), CATALOG.to_string()),
        ("layout.html".to_string(), LAYOUT_HTML.to_string()),
        ("layout.txt".to_string(), LAYOUT_TXT.to_string()),
    ];
    files.extend(order_shipped("fr", "Commande {{ order_id }} expédiée"));
    files.extend(order_shipped("en", en_subject));
    files.extend(order_shipped(
        "de",
        "Bestellung {{ order_id }} für Sie versandt",
    ));
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn order(locale: &str) -> Value {
    json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "template": "order_shipped",
        "locale": locale,
        "to": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "vars": {"order_id": "A-7", "tracking_url": "https://track.example/A-7"},
        "requested_at": "2026-11-27T08:00:00Z",
    })
}

async fn spawn_with_folder(
    smtp: &SmtpSink,
    folder: &Path,
    edit: impl FnOnce(&mut domain::config::Config),
) -> crate::common::TestApp {
    let dir = TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.smtp = Some(smtp_config(smtp.addr()));
    config.mailer.templates_dir = Some(folder.to_path_buf());
    config.mailer.brand.name = "Comptoir".into();
    edit(&mut config);
    spawn_with(config, fast_options(), Arc::new(dir)).await
}

#[tokio::test]
async fn a_new_template_with_a_layout_is_sent_listed_and_previewed_in_each_of_its_locales() {
    let smtp = SmtpSink::start();
    let folder = TempDir::new().unwrap();
    shop_folder(folder.path(), "Order {{ order_id }} shipped");
    let app = spawn_with_folder(&smtp, folder.path(), |_| {}).await;

    for (locale, subject, hello) in [
        ("fr", "Commande A-7 expédiée", "Bonjour"),
        ("en", "Order A-7 shipped", "Hello"),
        ("de", "Bestellung A-7 für Sie versandt", "Hallo"),
    ] {
        let request = order(locale);
        let id = request["id"].as_str().unwrap().to_string();
        let (code, answer) = app.post_mail(&request).await;
        assert_eq!(code, 202, "{answer}");
        let record = app
            .wait_for_status(&id, "sent", Duration::from_secs(15))
            .await;
        assert_eq!(record["locale"], locale);
        let mails = smtp.mails_for(&id);
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.header("subject").unwrap(), subject);
        assert_eq!(mail.template_hint(), "order_shipped");
        assert_eq!(mail.header("content-language").unwrap(), locale);
        let html = mail.html.clone().unwrap();
        assert!(html.contains("<h1>Comptoir header</h1>"), "{html}");
        assert!(html.contains("Comptoir footer"), "{html}");
        assert!(
            html.contains(&format!("<p>{hello} Ada Lovelace,</p>")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<html lang=\"{locale}\">")),
            "{html}"
        );
        let text = mail.text.clone().unwrap();
        assert!(text.starts_with(hello), "{text}");
        assert!(text.contains("-- Comptoir"), "{text}");
    }

    let (code, list) = app.get("/templates").await;
    assert_eq!(code, 200);
    let shipped = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "order_shipped")
        .unwrap_or_else(|| panic!("order_shipped is listed: {list}"));
    assert_eq!(shipped["locales"], json!(["fr", "en", "de"]));
    assert_eq!(shipped["vars"][0]["name"], "order_id");
    // The OpenAPI document describes the request a client must send for it.
    let (code, openapi) = app.get("/openapi.json").await;
    assert_eq!(code, 200);
    let variants = openapi
        .pointer("/components/schemas/MailRequest/allOf/1/oneOf")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("the mail request's variants: {openapi}"));
    let variant = variants
        .iter()
        .find(|v| v["properties"]["template"]["enum"] == json!(["order_shipped"]))
        .unwrap_or_else(|| panic!("order_shipped has its variant: {variants:?}"));
    assert_eq!(
        variant["properties"]["vars"]["required"],
        json!(["order_id", "tracking_url"])
    );
    assert_eq!(
        variant["properties"]["vars"]["properties"]["tracking_url"]["type"],
        "string"
    );
    assert!(
        variants
            .iter()
            .any(|v| v["properties"]["template"]["enum"] == json!(["welcome"])),
        "the built-in mails keep theirs"
    );
    // The built-in mails are still there, now in the folder's layout and with its brand.
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "welcome")
    );
    let (code, welcome) = app.post("/templates/welcome/fr/render", &json!({})).await;
    assert_eq!(code, 200, "{welcome}");
    let html = welcome["html"].as_str().unwrap();
    assert!(html.contains("<h1>Comptoir header</h1>"), "{html}");
    assert!(html.contains("L'équipe Comptoir"), "{html}");
    assert_eq!(welcome["subject"], "Bienvenue sur Comptoir, Ada Lovelace !");

    let preview = app
        .http
        .get(format!("{}/templates/order_shipped/de", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    let page = preview.text().await.unwrap();
    assert!(
        page.contains("Bestellung A-1042 für Sie versandt"),
        "{page}"
    );
    let live = app
        .http
        .get(&app.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        live.contains("href=\"/templates/order_shipped/de\""),
        "{live}"
    );
}

#[tokio::test]
async fn an_override_of_one_subject_changes_that_locale_and_leaves_the_others_built_in() {
    let smtp = SmtpSink::start();
    let folder = TempDir::new().unwrap();
    std::fs::write(
        folder.path().join("welcome.en.subject"),
        "{{ login }}, your {{ brand.name }} account is ready",
    )
    .unwrap();
    let app = spawn_with_folder(&smtp, folder.path(), |_| {}).await;
    let mut subjects = Vec::new();
    for locale in ["en", "fr"] {
        // The welcome mail as the users service sends it for a new account.
        let request = crate::common::mail_request("welcome", locale);
        let id = request["id"].as_str().unwrap().to_string();
        assert_eq!(app.post_mail(&request).await.0, 202);
        app.wait_for_status(&id, "sent", Duration::from_secs(15))
            .await;
        subjects.push(smtp.mails_for(&id)[0].header("subject").unwrap());
    }
    assert_eq!(
        subjects,
        [
            "ada, your Comptoir account is ready",
            "Bienvenue sur Comptoir, Ada Lovelace !"
        ]
    );
}

#[tokio::test]
async fn a_locale_the_template_lacks_is_sent_in_the_default_locale_and_recorded_so() {
    let smtp = SmtpSink::start();
    let folder = TempDir::new().unwrap();
    shop_folder(folder.path(), "Order {{ order_id }} shipped");
    let app = spawn_with_folder(&smtp, folder.path(), |config| {
        config.mailer.default_locale = domain::Locale::EN;
    })
    .await;
    for (asked, used, subject) in [
        ("it", "en", "Order A-7 shipped"),
        ("de-CH", "de", "Bestellung A-7 für Sie versandt"),
    ] {
        let request = order(asked);
        let id = request["id"].as_str().unwrap().to_string();
        let (code, answer) = app.post_mail(&request).await;
        assert_eq!(code, 202, "{answer}");
        let record = app
            .wait_for_status(&id, "sent", Duration::from_secs(15))
            .await;
        assert_eq!(record["locale"], used, "{record}");
        let mail = &smtp.mails_for(&id)[0];
        assert_eq!(mail.header("subject").unwrap(), subject);
        assert_eq!(mail.header("content-language").unwrap(), used);
    }
    // Not a language tag at all: rejected, as before.
    let (code, answer) = app.post_mail(&order("not a tag")).await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("BCP 47"),
        "{answer}"
    );
    // A well-formed name the catalog does not hold: rejected, naming the catalog.
    let mut unknown = order("en");
    unknown["template"] = json!("order_lost");
    let (code, answer) = app.post_mail(&unknown).await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("order_shipped"),
        "{answer}"
    );
}

#[tokio::test]
async fn each_broken_file_stops_the_start_with_one_line_naming_its_file_and_line() {
    type Break = fn(&Path);
    let cases: [(&str, Break, &str, &str); 5] = [
        (
            "a syntax error",
            |d| {
                std::fs::write(d.join("order_shipped.de.html"), "{% extends \"layout.html\" %}\n{% block body %}\n<p>{{ order_id }</p>\n{% endblock %}\n").unwrap()
            },
            "order_shipped.de.html:3:",
            "syntax error",
        ),
        (
            "a variable the catalog does not list",
            |d| {
                std::fs::write(d.join("order_shipped.fr.txt"), "{% extends \"layout.txt\" %}{% block body %}{{ order_id }} {{ tracking_url }}\n{{ coupon }}\n{% endblock %}\n").unwrap()
            },
            "order_shipped.fr.txt:2:",
            "coupon",
        ),
        (
            "a catalog variable no file uses",
            |d| {
                let catalog = CATALOG.replace(
                    r#"{"name": "order_id", "description": "The order's number.", "sample": "A-1042"},"#,
                    "{\"name\": \"order_id\", \"description\": \"The order's number.\", \"sample\": \"A-1042\"},\n        {\"name\": \"carrier\", \"description\": \"Who carries it.\", \"sample\": \"La Poste\"},",
                );
                std::fs::write(d.join("catalog.json"), catalog).unwrap();
            },
            "catalog.json:9:",
            "carrier",
        ),
        (
            "a missing .txt",
            |d| std::fs::remove_file(d.join("order_shipped.de.txt")).unwrap(),
            "catalog.json:4:",
            "order_shipped.de.txt is missing",
        ),
        (
            "an unclosed HTML tag",
            |d| {
                std::fs::write(d.join("order_shipped.en.html"), "{% extends \"layout.html\" %}\n{% block body %}\n<p>Hello {{ name }},</p>\n<p><strong><a href=\"{{ tracking_url }}\">{{ order_id }}</a></p>\n{% endblock %}\n").unwrap()
            },
            "order_shipped.en.html:4:",
            "<strong>",
        ),
    ];
    for (what, break_it, at, names) in cases {
        let folder = TempDir::new().unwrap();
        shop_folder(folder.path(), "Order {{ order_id }} shipped");
        break_it(folder.path());
        let (code, said) =
            start_refused(&[("FACTEUR_MAILER__TEMPLATES_DIR", folder.path().as_os_str())]).await;
        assert_eq!(code, Some(2), "{what}: {said}");
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: one line, not {said}");
        let path = folder.path().display().to_string();
        assert!(lines[0].contains(&path), "{what}: {said}");
        assert!(lines[0].contains(at), "{what}: {said}");
        assert!(lines[0].contains(names), "{what}: {said}");
    }
}

/// The real binary, sending to `smtp`, with `templates_dir`, logging at info.
struct Running {
    process: crate::common::MailerProcess,
    http: reqwest::Client,
}

impl Running {
    async fn start(smtp: &SmtpSink, folder: &Path) -> Running {
        let port = smtp.port().to_string();
        let folder = folder.display().to_string();
        let process = crate::common::MailerProcess::start(&[
            ("FACTEUR_MAILER__SMTP__HOST", "127.0.0.1"),
            ("FACTEUR_MAILER__SMTP__PORT", &port),
            ("FACTEUR_MAILER__SMTP__TLS", "none"),
            ("FACTEUR_MAILER__TEMPLATES_DIR", &folder),
            ("FACTEUR_LOG__LEVEL", "info"),
        ])
        .await;
        Running {
            process,
            http: reqwest::Client::new(),
        }
    }

    async fn post_mail(&self, body: &Value) -> u16 {
        self.http
            .post(format!("{}/mails", self.process.base))
            .bearer_auth(&self.process.token)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn status(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/mails/{id}", self.process.base))
            .bearer_auth(&self.process.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn reloads(&self, result: &str) -> u64 {
        let text = self.process.metrics().await;
        let key = format!("template_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    fn hang_up(&self) {
        self.process.hang_up();
    }
}

/// Points the symlink `link` at `target` in one rename, as a deploy would.
fn switch(link: &Path, target: &Path) {
    let next = link.with_extension("next");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(target, &next).unwrap();
    std::fs::rename(&next, link).unwrap();
}

#[tokio::test]
async fn sighup_puts_a_valid_set_in_force_under_load_and_keeps_the_running_one_on_a_broken_set() {
    let smtp = SmtpSink::start();
    let root = TempDir::new().unwrap();
    let (v1, v2, broken) = (
        root.path().join("v1"),
        root.path().join("v2"),
        root.path().join("v3"),
    );
    shop_folder(&v1, "v1 order {{ order_id }}");
    shop_folder(&v2, "v2 order {{ order_id }}");
    shop_folder(&broken, "v3 order {{ order_id }");
    // The mailer watches the folder the link points to when it starts; a new folder put in
    // place by switching the link is seen on SIGHUP only, which this test is about.
    let link = root.path().join("current");
    std::os::unix::fs::symlink(&v1, &link).unwrap();
    let mailer = Arc::new(Running::start(&smtp, &link).await);

    // A steady stream of mails while the set changes under it.
    let posted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (mailer, posted) = (mailer.clone(), posted.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..150 {
                let request = order("en");
                assert_eq!(mailer.post_mail(&request).await, 202);
                ids.push(request["id"].as_str().unwrap().to_string());
                posted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            ids
        })
    };
    testkit::eventually(Duration::from_secs(10), || async {
        posted.load(std::sync::atomic::Ordering::Relaxed) >= 20
    })
    .await;
    switch(&link, &v2);
    mailer.hang_up();
    assert!(
        testkit::eventually(Duration::from_secs(10), || async {
            mailer.reloads("loaded").await == 1
        })
        .await,
        "the reload is counted"
    );
    let after = order("en");
    let after_id = after["id"].as_str().unwrap().to_string();
    assert_eq!(mailer.post_mail(&after).await, 202);
    let ids = load.await.unwrap();

    let all: Vec<&String> = ids.iter().chain([&after_id]).collect();
    let everything_sent = testkit::eventually(Duration::from_secs(30), || async {
        for id in &all {
            if mailer.status(id).await["status"] != "sent" {
                return false;
            }
        }
        true
    })
    .await;
    assert!(everything_sent, "every mail is sent");
    let mails = smtp.mails();
    let (per_id, _) = testkit::smtp::count_by_message_id(&mails);
    for id in &all {
        let key = per_id
            .keys()
            .find(|k| k.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("mail {id} arrived"));
        assert_eq!(per_id[key], 1, "mail {id} arrived once");
    }
    let subject_of = |id: &str| smtp.mails_for(id)[0].header("subject").unwrap();
    assert_eq!(subject_of(&after_id), "v2 order A-7");
    let versions: Vec<String> = ids.iter().map(|id| subject_of(id)).collect();
    assert!(
        versions
            .iter()
            .all(|s| s == "v1 order A-7" || s == "v2 order A-7")
    );
    assert!(
        versions.iter().any(|s| s == "v1 order A-7"),
        "the load began on v1"
    );

    // A broken set: refused, counted, logged once; the running set goes on.
    switch(&link, &broken);
    mailer.hang_up();
    assert!(
        testkit::eventually(Duration::from_secs(10), || async {
            mailer.reloads("refused").await == 1
        })
        .await,
        "the refused reload is counted"
    );
    let still = order("en");
    let still_id = still["id"].as_str().unwrap().to_string();
    assert_eq!(mailer.post_mail(&still).await, 202);
    assert!(
        testkit::eventually(Duration::from_secs(15), || async {
            mailer.status(&still_id).await["status"] == "sent"
        })
        .await
    );
    assert_eq!(subject_of(&still_id), "v2 order A-7");
    let log = mailer.process.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("templates not reloaded"))
        .collect();
    assert_eq!(refusals.len(), 1, "{log}");
    assert!(refusals[0].contains("ERROR"), "{log}");
    assert!(refusals[0].contains("order_shipped.en.subject:1:"), "{log}");
    assert_eq!(mailer.reloads("loaded").await, 1);
}

#[tokio::test]
async fn an_edit_in_the_folder_is_in_force_within_two_seconds_without_a_signal() {
    let smtp = SmtpSink::start();
    let folder = TempDir::new().unwrap();
    shop_folder(folder.path(), "Order {{ order_id }} shipped");
    let app = spawn_with_folder(&smtp, folder.path(), |_| {}).await;
    let subject = || async {
        let (code, mail) = app
            .post("/templates/order_shipped/en/render", &json!({}))
            .await;
        assert_eq!(code, 200, "{mail}");
        mail["subject"].as_str().unwrap().to_string()
    };
    assert_eq!(subject().await, "Order A-1042 shipped");
    std::fs::write(
        folder.path().join("order_shipped.en.subject"),
        "Your order {{ order_id }} is on its way",
    )
    .unwrap();
    let seen = testkit::eventually(Duration::from_secs(2), || async {
        subject().await == "Your order A-1042 is on its way"
    })
    .await;
    assert!(seen, "the edit is in force within 2 s");
    let request = order("en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    app.wait_for_status(&id, "sent", Duration::from_secs(15))
        .await;
    assert_eq!(
        smtp.mails_for(&id)[0].header("subject").unwrap(),
        "Your order A-7 is on its way"
    );
}

#[tokio::test]
async fn without_a_folder_sighup_reloads_the_built_in_set_and_the_mailer_runs_on() {
    let mailer = crate::common::MailerProcess::start(&[]).await;
    mailer.hang_up();
    let reloaded = testkit::eventually(Duration::from_secs(10), || async {
        mailer
            .metrics()
            .await
            .contains("template_reloads_total{result=\"loaded\"} 1")
    })
    .await;
    assert!(reloaded, "the built-in set is loaded again and counted");
    let health = reqwest::get(format!("{}/health", mailer.base))
        .await
        .unwrap();
    assert!(health.status().is_success());
    mailer.kill().await;
}
