//! The live page in real headless Chromium (through chromedriver): open `/`, make
//! deliveries move through REST, and read the page's rows, filter and preview links.

use crate::common::chromium::Browser;
use crate::common::node_smtp::NodeSmtp;
use crate::common::{TestApp, fast_options, mail_request, spawn_app, spawn_with, test_config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

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
    let prompt = std::cell::RefCell::new(None);
    testkit::eventually(Duration::from_secs(10), || async {
        *prompt.borrow_mut() = alert_text().await;
        prompt.borrow().is_some()
    })
    .await;
    let prompt = prompt.into_inner();
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
    let text = std::cell::RefCell::new(String::new());
    testkit::eventually(Duration::from_secs(10), || async {
        *text.borrow_mut() = page_text().await;
        text.borrow().contains("Connection: connected")
    })
    .await;
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_mail(&request).await.0, 202);
    testkit::eventually(Duration::from_secs(10), || async {
        *text.borrow_mut() = page_text().await;
        let text = text.borrow();
        text.contains(&id) && text.contains("sent")
    })
    .await;
    let text = text.into_inner();
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

#[tokio::test]
async fn the_live_page_is_served_with_a_policy_that_lets_it_load_only_its_own_files() {
    let app = spawn_app().await;
    let get = |path: &'static str| app.http.get(format!("{}{path}", app.base)).send();
    let page = get("/").await.unwrap();
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let policy = header("content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<!-- template previews -->"), "{html}");
    assert!(
        !html.contains("<style") && !html.contains("style="),
        "no inline style"
    );
    for (path, kind) in [("/live.js", "text/javascript"), ("/live.css", "text/css")] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
}

/// `POST path` with the token and `body`; the status and the JSON body (`Null` if none).
async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.token)
        .json(body)
        .send()
        .await
        .expect("the mailer answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The page's row of delivery `id` as `{status, attempts, error, hidden, shown}`, `shown`
/// being whether its text is in the page's visible text; `Null` while there is no such row.
async fn live_row(browser: &Browser, id: &str) -> Value {
    let script = "var row = document.querySelector('#rows tr[data-id=\"' + arguments[0] + '\"]');\
         if (!row) return null;\
         var cell = function (name) { return row.querySelector('td.' + name).textContent; };\
         return { status: cell('status'), attempts: cell('attempts'), error: cell('error'),\
                  hidden: row.hidden, shown: document.body.innerText.indexOf(arguments[0]) >= 0 };";
    browser.run(script, json!([id])).await
}

/// Polls [`live_row`] for up to 10 s until `done` holds; the last row read.
async fn wait_for_row(browser: &Browser, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let row = std::cell::RefCell::new(Value::Null);
    testkit::eventually(Duration::from_secs(10), || async {
        *row.borrow_mut() = live_row(browser, id).await;
        done(&row.borrow())
    })
    .await;
    row.into_inner()
}

#[tokio::test]
async fn the_live_page_shows_a_suppressed_and_a_cancelled_delivery_and_filters_by_status() {
    let test = "the_live_page_shows_a_suppressed_and_a_cancelled_delivery_and_filters_by_status";
    let Some(smtp) = NodeSmtp::start(test, &[]).await else {
        return;
    };
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.smtp = Some(smtp.config());
    // A retry base of minutes keeps the deferred mail in `retrying` until it is cancelled.
    let mut options = fast_options();
    options.delivery.retry_base = Duration::from_secs(600);
    options.delivery.retry_cap = Duration::from_secs(1200);
    let app = spawn_with(config, options, Arc::new(dir)).await;
    let to = |email: &str| {
        let mut request = mail_request("welcome", "en");
        request["to"]["email"] = email.into();
        request
    };
    let id = |request: &Value| request["id"].as_str().unwrap().to_string();
    let (sent, deferred, suppressed) = (
        to("ada@example.com"),
        to("later@example.com"),
        to("gone@example.com"),
    );
    browser.goto(&format!("{}/", app.base)).await;
    let text = browser
        .wait_for_text(10, |t| t.contains("Connection: connected"))
        .await;
    assert!(text.contains("Connection: connected"), "{text}");

    // Act: one mail sent, one deferred by the server and then cancelled, one to an address
    // on the suppression list.
    assert_eq!(app.post_mail(&sent).await.0, 202);
    app.wait_for_status(&id(&sent), "sent", Duration::from_secs(15))
        .await;
    assert_eq!(app.post_mail(&deferred).await.0, 202);
    let retrying = app
        .wait_for_status(&id(&deferred), "retrying", Duration::from_secs(15))
        .await;
    let last_error = retrying["last_error"].as_str().unwrap_or("").to_string();
    let row = wait_for_row(&browser, &id(&deferred), |r| r["status"] == "retrying").await;
    assert_eq!(row["status"], "retrying", "{row}");
    let (status, cancelled) = post_json(
        &app,
        &format!("/mails/{}/cancel", id(&deferred)),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let (status, body) = post_json(
        &app,
        "/suppressions",
        &json!({"email": "gone@example.com", "reason": "gone@example.com asked to stop, as bob@example.org did"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, answer) = app.post_mail(&suppressed).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("accepted")),
        "{answer}"
    );

    // Assert: each delivery has one row with its status; the retried one shows its attempts
    // and the server's refusal.
    let sent_row = wait_for_row(&browser, &id(&sent), |r| r["status"] == "sent").await;
    assert_eq!(sent_row["status"], "sent", "{sent_row}");
    let cancelled_row =
        wait_for_row(&browser, &id(&deferred), |r| r["status"] == "cancelled").await;
    assert_eq!(cancelled_row["status"], "cancelled", "{cancelled_row}");
    assert_eq!(cancelled_row["attempts"], "1", "{cancelled_row}");
    assert!(!last_error.is_empty(), "the store has the 451: {retrying}");
    assert_eq!(
        cancelled_row["error"],
        last_error.as_str(),
        "{cancelled_row}"
    );
    let suppressed_row =
        wait_for_row(&browser, &id(&suppressed), |r| r["status"] == "suppressed").await;
    assert_eq!(suppressed_row["status"], "suppressed", "{suppressed_row}");
    // Anonymous viewers see no address, not even one an operator wrote in a reason.
    let reason = suppressed_row["error"].as_str().unwrap_or("");
    assert!(
        reason.contains("g\u{2026}@example.com asked to stop, as b\u{2026}@example.org did"),
        "{suppressed_row}"
    );
    assert!(
        !reason.contains("gone@") && !reason.contains("bob@"),
        "{suppressed_row}"
    );
    let rows = browser
        .run(
            "return document.querySelectorAll('#rows tr').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, 3, "one row per delivery");

    // Act: show only the cancelled deliveries, then send one more mail.
    browser
        .run(
            "var filter = document.getElementById('status-filter');\
             filter.value = arguments[0];\
             filter.dispatchEvent(new Event('change'));",
            json!(["cancelled"]),
        )
        .await;
    let text = browser.text().await;
    let late = to("ada@example.com");
    assert_eq!(app.post_mail(&late).await.0, 202);
    app.wait_for_status(&id(&late), "sent", Duration::from_secs(15))
        .await;
    let late_row = wait_for_row(&browser, &id(&late), |r| r["status"] == "sent").await;

    // Assert: only the cancelled row is visible, also for the row that arrived afterwards.
    assert!(text.contains(&id(&deferred)), "{text}");
    assert!(!text.contains(&id(&sent)), "{text}");
    assert!(!text.contains(&id(&suppressed)), "{text}");
    assert_eq!(live_row(&browser, &id(&sent)).await["hidden"], true);
    assert_eq!(live_row(&browser, &id(&deferred)).await["hidden"], false);
    assert_eq!(late_row["status"], "sent", "{late_row}");
    assert_eq!(late_row["hidden"], true, "{late_row}");
    assert_eq!(late_row["shown"], false, "{late_row}");

    // Assert: a preview link per template and locale, and nothing fetched from elsewhere.
    let hrefs = browser
        .run(
            "return Array.from(document.querySelectorAll('a[href^=\"/templates/\"]'))\
               .map(function (a) { return a.getAttribute('href'); });",
            json!([]),
        )
        .await;
    let fetched = browser.fetched_urls().await;
    browser.close().await;
    let mut expected = Vec::new();
    for template in [
        "welcome",
        "account_updated",
        "account_deleted",
        "password_reset",
        "email_verification",
        "email_changed",
        "password_changed",
    ] {
        for locale in ["fr", "en"] {
            expected.push(format!("/templates/{template}/{locale}"));
        }
    }
    let mut hrefs: Vec<String> = serde_json::from_value(hrefs).expect("a list of links");
    hrefs.sort();
    expected.sort();
    assert_eq!(hrefs, expected);
    assert!(!fetched.is_empty());
    for url in &fetched {
        assert!(url.starts_with(&app.base), "fetched from elsewhere: {url}");
    }
}

/// Sends `count` welcome mails through REST and waits until every one is `sent`; their ids.
async fn send_mails(app: &TestApp, count: usize) -> Vec<String> {
    let requests: Vec<Value> = (0..count).map(|_| mail_request("welcome", "en")).collect();
    let answers = futures_util::future::join_all(requests.iter().map(|r| app.post_mail(r))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 202, "{answer}");
    }
    let ids: Vec<String> = requests
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        app.wait_for_status(id, "sent", Duration::from_secs(30))
            .await;
    }
    ids
}

/// Every row of the page, in the page's order, as `[id, status]`.
async fn live_rows(browser: &Browser) -> Vec<(String, String)> {
    let rows = browser
        .run(
            "return Array.from(document.querySelectorAll('#rows tr')).map(function (row) {\
               return [row.dataset.id, row.querySelector('td.status').textContent]; });",
            json!([]),
        )
        .await;
    serde_json::from_value(rows).expect("a list of rows")
}

/// Polls [`live_rows`] every 100 ms for up to `seconds` until `done` holds; the last rows read.
async fn wait_for_rows(
    browser: &Browser,
    seconds: u64,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let rows = std::cell::RefCell::new(Vec::new());
    testkit::eventually(Duration::from_secs(seconds), || async {
        *rows.borrow_mut() = live_rows(browser).await;
        done(&rows.borrow())
    })
    .await;
    rows.into_inner()
}

#[tokio::test]
async fn the_live_page_opens_with_the_latest_50_deliveries() {
    let test = "the_live_page_opens_with_the_latest_50_deliveries";
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let app = spawn_app().await;
    // Arrange: 10 mails, all sent before 50 more, so that the 50 hold the latest changes.
    let oldest = send_mails(&app, 10).await;
    let latest = send_mails(&app, 50).await;

    // Act
    browser.goto(&format!("{}/", app.base)).await;
    let rows = wait_for_rows(&browser, 15, |rows| rows.len() >= 50).await;
    let text = browser.text().await;
    browser.close().await;

    // Assert: one row for each of the latest 50, with its last status, and none older.
    assert!(text.contains("Connection: connected"), "{text}");
    assert_eq!(rows.len(), 50, "{rows:?}");
    let mut shown: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    shown.sort_unstable();
    let mut expected: Vec<&str> = latest.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(shown, expected);
    assert!(rows.iter().all(|(_, status)| status == "sent"), "{rows:?}");
    for id in &oldest {
        assert!(!text.contains(id.as_str()), "{id} is one of the 10 oldest");
    }
}

/// Run in the page before its own script: `WebSocket` still makes real sockets, and also
/// lets the test close them all (`window.cutWebSockets()`) and refuse new ones until
/// `window.restoreWebSockets()`, as a lost network would. A refused socket is closed while
/// it connects, so the page gets the `close` it gets when the mailer cannot be reached.
const CUTTABLE_WEBSOCKET: &str = "(function () {\
    var Native = window.WebSocket;\
    var open = [];\
    var refusing = false;\
    function CuttableWebSocket(url, protocols) {\
      var ws = protocols === undefined ? new Native(url) : new Native(url, protocols);\
      if (refusing) ws.close(); else open.push(ws);\
      return ws;\
    }\
    CuttableWebSocket.prototype = Native.prototype;\
    window.WebSocket = CuttableWebSocket;\
    window.cutWebSockets = function () {\
      refusing = true;\
      open.forEach(function (ws) { ws.close(); });\
      open = [];\
    };\
    window.restoreWebSockets = function () { refusing = false; };\
  })();";

#[tokio::test]
async fn after_losing_its_socket_for_5_s_the_live_page_shows_each_mail_sent_meanwhile_once() {
    let test = "after_losing_its_socket_for_5_s_the_live_page_shows_each_mail_sent_meanwhile_once";
    let Some(browser) = Browser::start(test, json!({})).await else {
        return;
    };
    let app = spawn_app().await;
    // Chromium's DevTools protocol, through chromedriver: the script runs in every document
    // this session opens, before the document's own scripts.
    browser
        .post(
            "/goog/cdp/execute",
            json!({"cmd": "Page.addScriptToEvaluateOnNewDocument",
                   "params": {"source": CUTTABLE_WEBSOCKET}}),
        )
        .await;
    browser.goto(&format!("{}/", app.base)).await;
    let text = browser
        .wait_for_text(10, |t| t.contains("Connection: connected"))
        .await;
    assert!(text.contains("Connection: connected"), "{text}");
    let before = send_mails(&app, 1).await;
    let row = wait_for_row(&browser, &before[0], |r| r["status"] == "sent").await;
    assert_eq!(row["status"], "sent", "a mail shown live: {row}");

    // Act: the page's socket is closed, and reopening it refused, for at least 5 s, while
    // 100 mails are sent.
    let cut = tokio::time::Instant::now();
    browser.run("window.cutWebSockets();", json!([])).await;
    let meanwhile = send_mails(&app, 100).await;
    tokio::time::sleep_until(cut + Duration::from_secs(5)).await;
    let text = browser.text().await;
    let rows_while_cut = live_rows(&browser).await;
    browser.run("window.restoreWebSockets();", json!([])).await;
    let rows = wait_for_rows(&browser, 30, |rows| {
        rows.len() >= 101 && rows.iter().all(|(_, status)| status == "sent")
    })
    .await;
    let state = browser.text().await;
    browser.close().await;

    // Assert: nothing came while the socket was closed; after it reconnects, every mail has
    // one row, `sent`.
    assert!(!text.contains("Connection: connected"), "{text}");
    assert_eq!(rows_while_cut.len(), 1, "{rows_while_cut:?}");
    assert!(state.contains("Connection: connected"), "{state}");
    assert_eq!(rows.len(), 101, "one row per delivery: {rows:?}");
    for id in before.iter().chain(&meanwhile) {
        let mine: Vec<_> = rows.iter().filter(|(shown, _)| shown == id).collect();
        assert_eq!(mine.len(), 1, "{id}: {mine:?}");
        assert_eq!(mine[0].1, "sent", "{id}");
    }
}
