//! The live page in real headless Chromium (through chromedriver): open `/`, send a mail
//! through REST, see its id appear on the page.

use crate::common::chromium::Browser;
use crate::common::{mail_request, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_mail_sent_through_rest_appears_on_the_live_page_in_headless_chromium() {
    let test = "a_mail_sent_through_rest_appears_on_the_live_page_in_headless_chromium";
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let app = spawn_app().await;
    browser.goto(&format!("{}/", app.base)).await;
    let text = browser
        .wait_for_text(10, |t| t.contains("Connection: connected"))
        .await;
    assert!(
        text.contains("Connection: connected"),
        "the page connects to /live: {text}"
    );
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    let text = browser
        .wait_for_text(10, |t| t.contains(&id) && t.contains("sent"))
        .await;
    browser.close().await;
    assert!(text.contains(&id), "the page shows the mail id: {text}");
    assert!(
        text.contains("a\u{2026}@example.com"),
        "the recipient is masked: {text}"
    );
    assert!(!text.contains("ada@example.com") && !text.contains("Ada Lovelace"));
    assert!(text.contains("sent"));
}

#[tokio::test]
async fn with_a_live_token_the_live_page_asks_for_it_once_and_shows_whole_recipients() {
    let test = "with_a_live_token_the_live_page_asks_for_it_once_and_shows_whole_recipients";
    // "ignore": the prompt stays open until this test answers it.
    let Some(browser) = Browser::start(test, json!({"unhandledPromptBehavior": "ignore"})).await
    else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = crate::common::test_config(&dir);
    let live_token = format!("live-{}", uuid::Uuid::new_v4());
    config.mailer.live_token = Some(domain::Secret::new(live_token.clone()));
    let app = crate::common::spawn_with(
        config,
        crate::common::fast_options(),
        std::sync::Arc::new(dir),
    )
    .await;
    let alert_text = || async {
        browser
            .get("/alert/text")
            .await
            .and_then(|v| v.as_str().map(str::to_string))
    };

    browser.goto(&format!("{}/", app.base)).await;
    let mut prompt = None;
    for _ in 0..100 {
        prompt = alert_text().await;
        if prompt.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser
        .post("/alert/text", json!({ "text": live_token }))
        .await;
    browser.post("/alert/accept", json!({})).await;
    let page_text = || async {
        browser
            .run(
                "return document.body.innerText + '|' + sessionStorage.getItem('facteur.live_token')",
                json!([]),
            )
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = page_text().await;
        if text.contains("Connection: connected") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    for _ in 0..100 {
        text = page_text().await;
        if text.contains(&id) && text.contains("sent") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let asked_again = alert_text().await;
    browser.close().await;
    assert!(
        prompt.is_some_and(|p| p.contains("live token")),
        "the page asks for the live token"
    );
    assert!(text.contains("Connection: connected"), "{text}");
    assert!(text.contains(&live_token), "kept in sessionStorage: {text}");
    assert!(
        text.contains("Ada Lovelace <ada@example.com>"),
        "whole recipients: {text}"
    );
    assert!(asked_again.is_none(), "asked once");
}
