//! The live page in real headless Chromium, driven through chromedriver (WebDriver over
//! HTTP): open `/`, send a mail through REST, see its id appear on the page.

use crate::common::{mail_request, skip, spawn_app};
use serde_json::{Value, json};
use std::time::Duration;

struct Driver {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("chromedriver could not start: {e}"))?;
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("chromedriver did not answer within 10 s".into())
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON")
    }
}

fn chromium_missing() -> Option<&'static str> {
    let found = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found("chromedriver") {
        return Some("chromedriver is not installed (apt-get install chromium-driver)");
    }
    if !found("chromium") {
        return Some("chromium is not installed (apt-get install chromium)");
    }
    None
}

#[tokio::test]
async fn a_mail_sent_through_rest_appears_on_the_live_page_in_headless_chromium() {
    let test = "a_mail_sent_through_rest_appears_on_the_live_page_in_headless_chromium";
    if let Some(why) = chromium_missing() {
        skip(test, why);
        return;
    }
    let app = spawn_app().await;
    let mut driver = Driver::start().await.expect("chromedriver starts");
    let session = driver
        .post(
            "/session",
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
            }}}}),
        )
        .await;
    let sid = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a WebDriver session: {session}"))
        .to_string();
    let page_text = |driver: &Driver| {
        let sid = sid.clone();
        let http = driver.http.clone();
        let base = driver.base.clone();
        async move {
            let v: Value = http
                .post(format!("{base}/session/{sid}/execute/sync"))
                .json(&json!({"script": "return document.body.innerText", "args": []}))
                .send()
                .await
                .expect("execute")
                .json()
                .await
                .expect("JSON");
            v["value"].as_str().unwrap_or("").to_string()
        }
    };

    driver
        .post(
            &format!("/session/{sid}/url"),
            json!({"url": format!("{}/", app.base)}),
        )
        .await;
    let mut text = String::new();
    for _ in 0..100 {
        text = page_text(&driver).await;
        if text.contains("Connection: connected") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("Connection: connected"),
        "the page connects to /live: {text}"
    );
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    for _ in 0..100 {
        text = page_text(&driver).await;
        if text.contains(&id) && text.contains("sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = driver
        .http
        .delete(format!("{}/session/{sid}", driver.base))
        .send()
        .await;
    let _ = driver.child.kill().await;
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
    if let Some(why) = chromium_missing() {
        skip(test, why);
        return;
    }
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
    let mut driver = Driver::start().await.expect("chromedriver starts");
    // "ignore": the prompt stays open until this test answers it.
    let session = driver
        .post(
            "/session",
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "unhandledPromptBehavior": "ignore", "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
            }}}}),
        )
        .await;
    let sid = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a WebDriver session: {session}"))
        .to_string();
    let session_url = format!("{}/session/{sid}", driver.base);
    let http = driver.http.clone();
    let alert_text = || {
        let http = http.clone();
        let url = format!("{session_url}/alert/text");
        async move {
            let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            v["value"].as_str().map(str::to_string)
        }
    };

    driver
        .post(
            &format!("/session/{sid}/url"),
            json!({"url": format!("{}/", app.base)}),
        )
        .await;
    let mut prompt = None;
    for _ in 0..100 {
        prompt = alert_text().await;
        if prompt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
        .post(
            &format!("/session/{sid}/alert/text"),
            json!({"text": live_token}),
        )
        .await;
    driver
        .post(&format!("/session/{sid}/alert/accept"), json!({}))
        .await;
    let page_text = || {
        let http = http.clone();
        let url = format!("{session_url}/execute/sync");
        async move {
            let v: Value = http
                .post(url)
                .json(&json!({"script": "return document.body.innerText + '|' + sessionStorage.getItem('facteur.live_token')", "args": []}))
                .send()
                .await
                .expect("execute")
                .json()
                .await
                .expect("JSON");
            v["value"].as_str().unwrap_or("").to_string()
        }
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = page_text().await;
        if text.contains("Connection: connected") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    for _ in 0..100 {
        text = page_text().await;
        if text.contains(&id) && text.contains("sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked_again = alert_text().await;

    let _ = http.delete(session_url.clone()).send().await;
    let _ = driver.child.kill().await;
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
