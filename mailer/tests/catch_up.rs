//! `/live`'s `catch-up` with the official socket.io client: the latest 50 at open, every
//! change after a cursor 500 at a time and oldest first, masked recipients, and its bounds
//! (one at a time per socket; a payload that is not `{after?: cursor}`).

use crate::common::{mail_request, node_package, spawn_app};
use crate::socketio_js::run_script;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn catch_up_answers_the_latest_then_every_change_in_pages_and_is_bounded_per_socket() {
    let test = "catch_up_answers_the_latest_then_every_change_in_pages_and_is_bounded_per_socket";
    let Some(modules) = node_package(test, "socket.io-client") else {
        return;
    };
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..620 {
        let request = mail_request("welcome", "en");
        ids.push(request["id"].as_str().unwrap().to_string());
        assert_eq!(app.post_mail(&request).await.0, 202);
    }
    app.wait_for_status(ids.last().unwrap(), "sent", Duration::from_secs(60))
        .await;
    for id in &ids {
        app.wait_for_status(id, "sent", Duration::from_secs(30))
            .await;
    }

    let seen = run_script(&modules, "catch_up.js", &[&app.base]).await;

    let latest = &seen["latest"];
    assert_eq!(latest["count"], 50, "the latest 50: {latest}");
    let latest_ids: Vec<&str> = latest["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let newest: Vec<&str> = ids[ids.len() - 50..].iter().map(String::as_str).collect();
    assert_eq!(
        latest_ids.iter().copied().collect::<HashSet<_>>(),
        newest.iter().copied().collect::<HashSet<_>>(),
        "the latest 50 are the 50 mails sent last"
    );
    assert_eq!(latest["ordered"], true, "oldest first: {latest}");
    assert!(
        latest["emails"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e == "a\u{2026}@example.com"),
        "anonymous viewers get masked recipients: {latest}"
    );

    let pages = seen["pages"].as_array().unwrap();
    let counts: Vec<u64> = pages.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(
        counts,
        vec![500, 120],
        "620 changes, 500 at a time: {pages:?}"
    );
    let mut all = Vec::new();
    for page in pages {
        assert_eq!(page["ordered"], true, "each page oldest first: {page}");
        assert_eq!(
            page["cursor"], page["last"],
            "a page's cursor is its last item's"
        );
        all.extend(
            page["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    assert!(
        pages[0]["last"].as_str() < pages[1]["first"].as_str(),
        "pages follow each other"
    );
    assert_eq!(
        all.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>(),
        "every delivery once, in its latest state"
    );
    assert_eq!(all.len(), ids.len());

    let burst = seen["burst"].as_array().unwrap();
    let answered = burst.iter().filter(|b| b.as_u64() == Some(500)).count();
    let busy = burst.iter().filter(|b| b.as_str() == Some("busy")).count();
    assert!(answered >= 1, "one of the burst is answered: {burst:?}");
    assert!(busy >= 1, "the others are told to come back: {burst:?}");
    assert_eq!(answered + busy, burst.len(), "nothing else: {burst:?}");
    assert_eq!(
        seen["bad"],
        serde_json::json!(["invalid_cursor", "invalid_cursor", "invalid_cursor"])
    );
}
