//! `GET /templates`, `POST /templates/{name}/{locale}/render` and the preview page
//! `GET /templates/{name}/{locale}`, black box over HTTP, and the preview in headless Chromium.

use crate::common::chromium::Browser;
use crate::common::{TestApp, spawn_app};
use domain::{Locale, Template};
use serde_json::{Value, json};

/// `POST /templates/{name}/{locale}/render` with the token and `body` as JSON, or with no
/// body at all when `body` is `None`.
async fn render(app: &TestApp, name: &str, locale: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/templates/{name}/{locale}/render", app.base))
        .bearer_auth(&app.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the mailer answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// `text` as minijinja's autoescape writes it in an HTML body.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["details"].is_object(), "{body}");
}

#[tokio::test]
async fn the_list_names_every_template_with_both_locales_and_its_variables() {
    let app = spawn_app().await;

    let (status, list) = app.get("/templates").await;
    let anonymous = app
        .http
        .get(format!("{}/templates", app.base))
        .send()
        .await
        .unwrap();

    assert_eq!(status, 200, "{list}");
    let list = list.as_array().expect("a list");
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let expected: Vec<&str> = Template::BUILT_IN.iter().map(|t| t.as_str()).collect();
    assert_eq!(names, expected);
    for entry in list {
        let mut locales: Vec<&str> = entry["locales"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        locales.sort_unstable();
        assert_eq!(locales, ["en", "fr"], "{entry}");
        assert!(
            entry["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{entry}"
        );
        let recipient: Vec<&str> = entry["recipient_vars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(recipient, ["name", "email"], "{entry}");
    }
    let vars_of = |name: &str| -> Vec<String> {
        let entry = list.iter().find(|t| t["name"] == name).unwrap();
        entry["vars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                assert!(
                    v["description"].is_string() && !v["sample"].is_null(),
                    "{v}"
                );
                v["name"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(vars_of("welcome"), ["login", "verify_url", "expires_at"]);
    let welcome = list.iter().find(|t| t["name"] == "welcome").unwrap();
    let optional: Vec<bool> = welcome["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["optional"].as_bool().unwrap())
        .collect();
    assert_eq!(optional, [false, true, true]);
    assert_eq!(vars_of("email_verification"), ["verify_url", "expires_at"]);
    assert_eq!(vars_of("email_changed"), ["new_email", "changed_at"]);
    assert_eq!(vars_of("password_changed"), ["changed_at"]);
    assert_eq!(vars_of("account_updated"), ["changed"]);
    assert!(vars_of("account_deleted").is_empty());
    assert_eq!(vars_of("password_reset"), ["reset_url", "expires_at"]);
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_error(&anonymous.json().await.unwrap(), "unauthorized");
}

#[tokio::test]
async fn every_template_renders_in_every_locale_with_its_sample_values() {
    let app = spawn_app().await;
    let (_, list) = app.get("/templates").await;

    for template in Template::BUILT_IN {
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == template.as_str())
            .unwrap();
        for locale in Locale::BUILT_IN {
            let (status, mail) = render(&app, template.as_str(), locale.as_str(), None).await;
            let mut same = Vec::new();
            for body in [json!({}), json!(null), json!({"vars": null})] {
                same.push(render(&app, template.as_str(), locale.as_str(), Some(body)).await);
            }

            let what = format!("{template} {locale}");
            assert_eq!(status, 200, "{what}: {mail}");
            for (status, other) in &same {
                assert_eq!(
                    (*status, other),
                    (200, &mail),
                    "{what}: every way to ask for the samples"
                );
            }
            for part in ["subject", "text", "html"] {
                let text = mail[part].as_str().unwrap();
                assert!(!text.trim().is_empty(), "{what} {part}");
                assert!(
                    !text.contains("{{") && !text.contains("{%"),
                    "{what} {part}: {text}"
                );
            }
            assert!(
                mail["text"].as_str().unwrap().contains("Ada Lovelace"),
                "{what}"
            );
            for var in entry["vars"].as_array().unwrap() {
                let samples: Vec<String> = match &var["sample"] {
                    Value::Array(items) => {
                        items.iter().map(|i| i.as_str().unwrap().into()).collect()
                    }
                    sample => vec![sample.as_str().unwrap().into()],
                };
                for sample in samples {
                    assert!(
                        mail["text"].as_str().unwrap().contains(&sample),
                        "{what}: {sample}"
                    );
                    let html = mail["html"].as_str().unwrap();
                    assert!(html.contains(&html_escaped(&sample)), "{what}: {sample}");
                }
            }
        }
    }
    let (_, welcome) = render(&app, "welcome", "en", None).await;
    assert!(
        welcome["html"]
            .as_str()
            .unwrap()
            .contains("<strong>ada</strong>")
    );
}

#[tokio::test]
async fn the_welcome_mail_renders_with_and_without_its_verification_link() {
    let app = spawn_app().await;
    let link = "https://facteur.example/email-verifications/abc";

    for locale in ["fr", "en"] {
        let (plain_status, plain) = render(
            &app,
            "welcome",
            locale,
            Some(json!({"vars": {"login": "ada"}})),
        )
        .await;
        let (proving_status, proving) = render(
            &app,
            "welcome",
            locale,
            Some(json!({"vars": {"login": "ada", "verify_url": link, "expires_at": "2026-11-29T08:00:00Z"}})),
        )
        .await;
        let (half_status, half) = render(
            &app,
            "welcome",
            locale,
            Some(json!({"vars": {"login": "ada", "verify_url": link}})),
        )
        .await;

        assert_eq!(plain_status, 200, "{plain}");
        assert_eq!(proving_status, 200, "{proving}");
        for part in ["text", "html"] {
            assert!(
                !plain[part]
                    .as_str()
                    .unwrap()
                    .contains("email-verifications"),
                "{plain}"
            );
            assert!(
                !plain[part].as_str().unwrap().contains("2026-11-29"),
                "{plain}"
            );
            assert!(
                proving[part]
                    .as_str()
                    .unwrap()
                    .contains("2026-11-29T08:00:00Z"),
                "{proving}"
            );
        }
        assert!(
            proving["text"].as_str().unwrap().contains(link),
            "{proving}"
        );
        assert!(
            proving["html"]
                .as_str()
                .unwrap()
                .contains(&html_escaped(link)),
            "{proving}"
        );
        assert_eq!(half_status, 400, "{half}");
        assert!(half["details"]["vars.expires_at"].is_string(), "{half}");
    }
}

#[tokio::test]
async fn given_vars_are_rendered_and_html_escaped() {
    let app = spawn_app().await;

    let (status, mail) = render(
        &app,
        "account_updated",
        "fr",
        Some(json!({"vars": {"changed": ["<b>first_name</b>", "company"]}})),
    )
    .await;

    assert_eq!(status, 200, "{mail}");
    assert_eq!(mail["subject"], "Votre compte Facteur a été modifié");
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("<b>first_name</b>, company")
    );
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains(&html_escaped("<b>first_name</b>")), "{html}");
}

#[tokio::test]
async fn a_missing_or_an_unknown_variable_is_refused_naming_it() {
    let app = spawn_app().await;
    let url = json!("https://facteur.example/password-resets/x");

    let (missing, missing_body) = render(
        &app,
        "password_reset",
        "en",
        Some(json!({"vars": {"reset_url": url}})),
    )
    .await;
    let (unknown, unknown_body) = render(
        &app,
        "welcome",
        "fr",
        Some(json!({"vars": {"login": "ada", "coupon": "X"}})),
    )
    .await;
    let (recipient, recipient_body) = render(
        &app,
        "welcome",
        "en",
        Some(json!({"vars": {"login": "ada", "name": "Eve"}})),
    )
    .await;
    let (mistyped, mistyped_body) = render(
        &app,
        "account_updated",
        "en",
        Some(json!({"vars": {"changed": "email"}})),
    )
    .await;
    let (stray, stray_body) = render(&app, "welcome", "en", Some(json!({"varz": {}}))).await;

    assert_eq!(missing, 400, "{missing_body}");
    assert_error(&missing_body, "invalid_request");
    assert!(
        missing_body["details"]["vars.expires_at"].is_string(),
        "{missing_body}"
    );
    assert!(
        missing_body["message"]
            .as_str()
            .unwrap()
            .contains("expires_at")
    );
    assert_eq!(unknown, 400, "{unknown_body}");
    assert_error(&unknown_body, "invalid_request");
    assert!(
        unknown_body["details"]["vars.coupon"].is_string(),
        "{unknown_body}"
    );
    assert!(unknown_body["message"].as_str().unwrap().contains("coupon"));
    assert_eq!(recipient, 400, "{recipient_body}");
    assert!(
        recipient_body["details"]["vars.name"]
            .as_str()
            .unwrap()
            .contains("recipient")
    );
    assert_eq!(mistyped, 400, "{mistyped_body}");
    assert!(
        mistyped_body["details"]["vars.changed"].is_string(),
        "{mistyped_body}"
    );
    assert_eq!(stray, 400, "{stray_body}");
    assert!(stray_body["details"]["varz"].is_string(), "{stray_body}");
}

#[tokio::test]
async fn an_unknown_template_or_locale_is_not_found_and_a_bad_body_is_refused() {
    let app = spawn_app().await;
    let post_raw = |content_type: &'static str, body: &'static str| {
        app.http
            .post(format!("{}/templates/welcome/en/render", app.base))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let (template, template_body) = render(&app, "newsletter", "en", None).await;
    let (locale, locale_body) = render(&app, "welcome", "de", None).await;
    let preview = app
        .http
        .get(format!("{}/templates/welcome/de", app.base))
        .send()
        .await
        .unwrap();
    let text = post_raw("text/plain", "vars=1").await.unwrap();
    let broken = post_raw("application/json", "{\"vars\":").await.unwrap();
    let list = post_raw("application/json", "[]").await.unwrap();
    let anonymous = app
        .http
        .post(format!("{}/templates/welcome/en/render", app.base))
        .send()
        .await
        .unwrap();
    let huge = format!("{{\"vars\": {{\"login\": \"{}\"}}}}", "a".repeat(70 * 1024));
    let too_large = app
        .http
        .post(format!("{}/templates/welcome/en/render", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();

    assert_eq!(template, 404, "{template_body}");
    assert_error(&template_body, "not_found");
    assert!(
        template_body["message"]
            .as_str()
            .unwrap()
            .contains("newsletter")
    );
    assert_eq!(locale, 404, "{locale_body}");
    assert_error(&locale_body, "not_found");
    assert!(locale_body["message"].as_str().unwrap().contains("de"));
    assert_eq!(preview.status().as_u16(), 404);
    assert_error(&preview.json().await.unwrap(), "not_found");
    assert_eq!(text.status().as_u16(), 415);
    assert_error(&text.json().await.unwrap(), "unsupported_media_type");
    assert_eq!(broken.status().as_u16(), 400);
    assert_error(&broken.json().await.unwrap(), "invalid_json");
    assert_eq!(list.status().as_u16(), 400);
    assert_error(&list.json().await.unwrap(), "invalid_json");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(too_large.status().as_u16(), 413);
    assert_error(&too_large.json().await.unwrap(), "payload_too_large");
}

#[tokio::test]
async fn every_preview_page_shows_its_subject_without_a_token() {
    let app = spawn_app().await;

    for template in Template::BUILT_IN {
        for locale in Locale::BUILT_IN {
            let (_, mail) = render(&app, template.as_str(), locale.as_str(), None).await;
            let response = app
                .http
                .get(format!("{}/templates/{template}/{locale}", app.base))
                .send()
                .await
                .unwrap();

            let what = format!("{template} {locale}");
            assert_eq!(response.status().as_u16(), 200, "{what}");
            let headers = response.headers().clone();
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            let policy = headers["content-security-policy"].to_str().unwrap();
            assert!(policy.contains("default-src 'none'"), "{policy}");
            let page = response.text().await.unwrap();
            // The subject is escaped like any text: compare with its HTML form.
            let subject = html_escaped(mail["subject"].as_str().unwrap());
            assert!(
                page.contains(&format!("<p id=\"subject\">{subject}</p>")),
                "{what}: {subject}"
            );
            assert!(
                page.contains("<iframe") && page.contains(" sandbox "),
                "{what}"
            );
            assert!(!page.contains("allow-scripts"), "{what}");
            assert!(!page.contains("<script"), "{what}");
            for t in Template::BUILT_IN {
                for l in Locale::BUILT_IN {
                    let href = html_escaped(&format!("/templates/{t}/{l}"));
                    assert!(
                        page.contains(&format!("href=\"{href}\"")),
                        "{what}: link to {t} {l}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_password_reset_preview_renders_in_headless_chromium_without_leaving_the_mailer() {
    let test = "the_password_reset_preview_renders_in_headless_chromium_without_leaving_the_mailer";
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let app = spawn_app().await;
    let (_, mail) = render(&app, "password_reset", "en", None).await;

    browser
        .goto(&format!("{}/templates/password_reset/en", app.base))
        .await;
    let text = browser.wait_for_text(10, |t| t.contains("Text body")).await;
    let frame = browser
        .run(
            "var f = document.querySelector('iframe');\
             return {frames: window.frames.length, sandbox: f.getAttribute('sandbox'),\
                     srcdoc: f.getAttribute('srcdoc'), subject: document.getElementById('subject').textContent,\
                     text: document.getElementById('text').textContent};",
            json!([]),
        )
        .await;
    let element = browser
        .post(
            "/element",
            json!({"using": "css selector", "value": "iframe"}),
        )
        .await;
    browser.post("/frame", json!({ "id": element })).await;
    let inside = browser.text().await;
    browser.post("/frame/parent", json!({})).await;
    let urls = browser.fetched_urls().await;
    browser.close().await;

    assert!(text.contains("Reset your Facteur password"), "{text}");
    assert!(text.contains("The Facteur team"), "{text}");
    assert_eq!(frame["frames"], 1, "{frame}");
    assert_eq!(
        frame["sandbox"], "",
        "a sandbox with nothing allowed: {frame}"
    );
    assert_eq!(
        frame["srcdoc"], mail["html"],
        "the frame holds the HTML body"
    );
    assert_eq!(frame["subject"], mail["subject"]);
    assert_eq!(frame["text"], mail["text"]);
    assert!(
        inside.contains("Choose a new password"),
        "the frame shows the HTML body: {inside}"
    );
    assert!(!urls.is_empty());
    for url in &urls {
        assert!(
            url.starts_with(&app.base),
            "a request outside the mailer: {url}"
        );
    }
}
