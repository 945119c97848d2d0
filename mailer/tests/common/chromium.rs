//! Real headless Chromium, driven through chromedriver (WebDriver over HTTP), for the pages
//! the mailer serves: the live page and the template previews.

use serde_json::{Value, json};
use std::time::Duration;

/// A chromedriver process with one browser session; both end when dropped or closed.
pub struct Browser {
    child: tokio::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

/// Why Chromium cannot run here, if it cannot (the test then skips visibly, or fails under
/// `FACTEUR_REQUIRE_SERVICES=1`).
pub fn chromium_missing() -> Option<&'static str> {
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

impl Browser {
    /// Starts chromedriver and a headless session, or `None` (the test marked skipped) when
    /// Chromium is not installed. `extra` is merged into the `alwaysMatch` capabilities.
    pub async fn start(test: &str, extra: Value) -> Option<Browser> {
        if let Some(why) = chromium_missing() {
            testkit::skip_or_fail(test, why);
            return None;
        }
        let port = testkit::free_port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let up = testkit::eventually(Duration::from_secs(10), || async {
            http.get(format!("{base}/status")).send().await.is_ok()
        })
        .await;
        assert!(up, "chromedriver answers within 10 s");
        let mut capabilities = json!({"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            // Without the background-networking flags Chromium calls out to Google's hosts.
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-dev-shm-usage"]
        }});
        if let (Some(caps), Some(more)) = (capabilities.as_object_mut(), extra.as_object()) {
            for (k, v) in more {
                caps.insert(k.clone(), v.clone());
            }
        }
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": capabilities}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {answer}"))
            .to_string();
        Some(Browser {
            child,
            base,
            session,
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    /// POSTs `body` to the session's `path` and returns the answer's `value`.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let answer: Value = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        answer["value"].clone()
    }

    /// GETs the session's `path` and returns the answer's `value`, or `None` on an error.
    pub async fn get(&self, path: &str) -> Option<Value> {
        let answer: Value = self
            .http
            .get(self.url(path))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if answer["value"].get("error").is_some() {
            return None;
        }
        Some(answer["value"].clone())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body) in the page with `args` and returns what it returns.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.run(
            "return document.body ? document.body.innerText : ''",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Polls the page's text for up to `seconds` until `done` holds, and
    /// returns the last text read.
    pub async fn wait_for_text(&self, seconds: u64, done: impl Fn(&str) -> bool) -> String {
        let text = std::sync::Mutex::new(String::new());
        testkit::eventually(Duration::from_secs(seconds), || async {
            let read = self.text().await;
            let finished = done(&read);
            *text.lock().expect("text lock") = read;
            finished
        })
        .await;
        text.into_inner().expect("text lock")
    }

    /// Every URL the page and its frames fetched, from the Resource Timing entries, and the
    /// page's own address.
    pub async fn fetched_urls(&self) -> Vec<String> {
        let script = "var urls = [location.href];\
             performance.getEntriesByType('resource').forEach(function (e) { urls.push(e.name); });\
             for (var i = 0; i < frames.length; i++) { try {\
               frames[i].performance.getEntriesByType('resource').forEach(function (e) { urls.push(e.name); });\
             } catch (e) {} }\
             return urls;";
        self.run(script, json!([]))
            .await
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.child.kill().await;
    }
}
