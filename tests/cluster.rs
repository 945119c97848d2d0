//! Several mailers as one (`mailer.cluster`): two mailer processes on one PostgreSQL store
//! and one Redis of their own (support/mailer_pair.rs), watched by clients of the official
//! socket.io-client; and a `/live` viewer catching up on what it missed while away.

use crate::support::mailer_pair::{
    MailerPair, by_id, cursor_of, ids_of, mail_request, masked, senders, service_auth,
    wait_all_sent,
};
use crate::support::postgres::FreshDatabase;
use crate::support::socketio_clients::SocketClients;
use crate::support::stack::{Kind, SERVICE_TOKEN, Stack, metric_sum_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use testkit::skip::POSTGRES;
use testkit::skip::{available, report};
use testkit::smtp::SmtpSink;

const WAIT: Duration = Duration::from_secs(90);

/// Emits every request through `socket` without waiting; returns the acks' references.
async fn send_all(clients: &mut SocketClients, socket: &str, requests: &[Value]) -> Vec<String> {
    let mut refs = Vec::new();
    for request in requests {
        refs.push(clients.emit(socket, "send-mail", request.clone()).await);
    }
    refs
}

/// Waits for each ack and checks it says `accepted`.
async fn assert_accepted(clients: &SocketClients, refs: &[String], requests: &[Value]) {
    for (reference, request) in refs.iter().zip(requests) {
        let ack = clients.ack(reference, WAIT).await;
        let accepted = json!({"id": request["id"], "status": "accepted"});
        assert_eq!(ack, accepted, "{reference}");
    }
}

/// The `catch-up` ack of socket `name` for `payload`, and its items' (cursor, id). A `busy`
/// answer (one catch-up a second per socket) is asked again a second later, as the live
/// page does.
async fn catch_up(
    clients: &mut SocketClients,
    name: &str,
    payload: Value,
) -> (Value, Vec<(String, String)>) {
    let mut answer = clients
        .emit_with_ack(name, "catch-up", payload.clone())
        .await;
    for _ in 0..5 {
        if answer["error"] != "busy" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        answer = clients
            .emit_with_ack(name, "catch-up", payload.clone())
            .await;
    }
    let items = answer["items"]
        .as_array()
        .unwrap_or_else(|| panic!("catch-up answers items: {answer}"));
    let listed = items
        .iter()
        .map(|i| (cursor_of(i), i["id"].as_str().unwrap_or("").to_string()))
        .collect();
    (answer, listed)
}

/// A (socket, event, status) and the ids it must be heard for.
type Expected<'a> = (&'a str, &'a str, &'a str, Vec<String>);

/// Waits until each socket heard its event for each of its ids; `what` names the wait.
async fn wait_heard(clients: &SocketClients, what: &str, expected: &[Expected<'_>]) {
    let done = |c: &SocketClients| {
        expected
            .iter()
            .all(|(s, e, st, ids)| c.heard(s, e, st, ids) == ids.len())
    };
    let progress = |c: &SocketClients| {
        let each: Vec<String> = expected
            .iter()
            .map(|(s, e, st, ids)| {
                format!("{s} {e} {st}: {} of {}", c.heard(s, e, st, ids), ids.len())
            })
            .collect();
        each.join(", ")
    };
    clients.wait_until(what, WAIT, done, progress).await;
}

/// Waits until every socket has heard all that was sent to it before, rather than for a
/// quiet spell. Two fence sockets, one on each mailer and both in the `welcome` room, send one
/// mail each; once the fence sockets and `watchers` have heard both mails queued and sent,
/// each mailer has passed on everything it emitted earlier: socket.io keeps each
/// connection's order, and Redis each channel's. Returns the fence requests.
async fn fence(clients: &mut SocketClients, pair: &MailerPair, watchers: &[&str]) -> Vec<Value> {
    let (a, b) = (pair.a_url(), pair.b_url());
    let fences = ["fence-a", "fence-b"];
    for (socket, url) in fences.into_iter().zip([&a, &b]) {
        clients.connect(socket, url, "/", service_auth()).await;
        let joined = clients
            .emit_with_ack(socket, "join", json!("template:welcome"))
            .await;
        assert_eq!(joined, json!({"ok": true}), "{socket} joins the room");
    }
    let mut requests = Vec::new();
    for socket in fences {
        let request = mail_request(socket, 0);
        let ack = clients
            .emit_with_ack(socket, "send-mail", request.clone())
            .await;
        assert_eq!(ack["status"], "accepted", "{socket}'s mail: {ack}");
        requests.push(request);
    }
    let ids = ids_of(&requests);
    let expected: Vec<Expected> = fences
        .iter()
        .chain(watchers)
        .flat_map(|socket| {
            ["queued", "sent"].map(|status| (*socket, "mail-activity", status, ids.clone()))
        })
        .collect();
    wait_heard(clients, "every socket to hear both fence mails", &expected).await;
    requests
}

#[tokio::test]
async fn two_mailers_on_one_redis_bring_every_event_to_every_client_once() {
    let test = "two_mailers_on_one_redis_bring_every_event_to_every_client_once";
    let Some(mut clients) = SocketClients::start(test).await else {
        return;
    };
    // A relay that takes 150 ms over each mail keeps A's workers busy, so that B's
    // dispatcher, which reads the shared store, takes part of A's mails.
    let smtp = SmtpSink::start_slow(Duration::from_millis(150));
    let Some(pair) = MailerPair::start(test, smtp).await else {
        return;
    };
    let (a, b) = (pair.a_url(), pair.b_url());
    clients.connect("a-sender", &a, "/", service_auth()).await;
    clients.connect("b-room", &b, "/", service_auth()).await;
    clients.connect("b-live", &b, "/live", json!({})).await;
    let joined = clients
        .emit_with_ack("b-room", "join", json!("template:welcome"))
        .await;
    assert_eq!(joined, json!({"ok": true}));

    // Act: 200 mails through A.
    let requests: Vec<Value> = (0..200).map(|n| mail_request("one", n)).collect();
    let (mut ids, mut request_of) = (ids_of(&requests), by_id(&requests));
    let refs = send_all(&mut clients, "a-sender", &requests).await;
    assert_accepted(&clients, &refs, &requests).await;
    let expected: Vec<Expected> = [
        ("a-sender", "mail-status", "sent"),
        ("b-room", "mail-status", "sent"),
        ("b-room", "mail-activity", "queued"),
        ("b-room", "mail-activity", "sent"),
        ("b-live", "mail-activity", "queued"),
        ("b-live", "mail-activity", "sent"),
    ]
    .map(|(s, e, st)| (s, e, st, ids.clone()))
    .into();
    wait_heard(
        &clients,
        "every mail's events on A's sender and B's clients",
        &expected,
    )
    .await;
    let mails = pair.stack.smtp.wait_for(ids.len(), WAIT).await;
    assert!(
        mails.len() >= ids.len(),
        "{} of {} mails reached SMTP",
        mails.len(),
        ids.len()
    );
    let mails = pair.stack.settled_mails().await;
    let fenced = fence(&mut clients, &pair, &["b-room", "b-live"]).await;

    // Each mail once, some of them by B, and their mail-status back to A's sender.
    let (by, times) = senders(&mails);
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(times.len(), ids.len(), "distinct mails at SMTP");
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let by_b: Vec<String> = ids.iter().filter(|id| by[*id] == "b").cloned().collect();
    let sent = |text: &str| metric_sum_with(text, "deliveries_total", &["status=\"sent\""]);
    let (a_sent, b_sent) = (
        sent(&pair.stack.metrics_text(&a).await),
        sent(&pair.stack.metrics_text(&b).await),
    );
    report(&format!(
        "cluster, 200 mails sent on A: SMTP got {} ({} from A, {} from B; deliveries_total sent: A {a_sent}, B {b_sent}); A's sender got mail-status sent for {} ({} of B's)",
        mails.len(),
        ids.len() - by_b.len(),
        by_b.len(),
        clients.heard("a-sender", "mail-status", "sent", &ids),
        clients.heard("a-sender", "mail-status", "sent", &by_b),
    ));
    assert!(
        !by_b.is_empty(),
        "B's dispatcher sent none of the 200 mails, so nothing shows mail-status crossing from B to A's sender"
    );

    // Each event once on every client; whole recipients on `/`, masked ones on `/live`.
    for (socket, event) in [
        ("a-sender", "mail-status"),
        ("b-room", "mail-status"),
        ("b-room", "mail-activity"),
        ("b-live", "mail-activity"),
    ] {
        clients.assert_each_once(socket, event);
    }
    // From here on the fence mails are deliveries like the others.
    ids.extend(ids_of(&fenced));
    request_of.extend(by_id(&fenced));
    for event in clients.received("b-room", "mail-activity") {
        let request = &request_of[event["id"].as_str().unwrap_or("")];
        assert_eq!(
            event["to"], request["to"],
            "service clients see whole recipients"
        );
    }
    let live = clients.received("b-live", "mail-activity");
    let mut cursors: HashMap<(String, String), String> = HashMap::new();
    for event in &live {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(
            event["to"],
            masked(&request_of[&id]),
            "/live masks recipients: {event}"
        );
        let status = event["status"].as_str().unwrap_or("").to_string();
        cursors.insert((id, status), cursor_of(event));
    }
    let distinct: HashSet<&String> = cursors.values().collect();
    assert_eq!(
        distinct.len(),
        live.len(),
        "every change has a cursor of its own"
    );
    let cursor = |id: &String, status: &str| cursors[&(id.clone(), status.to_string())].clone();
    for id in &ids {
        let (queued, sent) = (cursor(id, "queued"), cursor(id, "sent"));
        assert!(queued < sent, "{id}: queued at {queued}, sent at {sent}");
    }

    // The store-wide order, read through the other mailer: every delivery once, at its
    // `sent` change, oldest first.
    let by_cursor: BTreeMap<String, String> = ids
        .iter()
        .map(|id| (cursor(id, "sent"), id.clone()))
        .collect();
    let expected: Vec<(String, String)> = by_cursor.into_iter().collect();
    let first = cursors.values().min().expect("some cursor").clone();
    clients.connect("a-live", &a, "/live", json!({})).await;
    let (_, listed) = catch_up(&mut clients, "a-live", json!({"after": first})).await;
    assert_eq!(listed, expected, "catch-up on A after the first change");
    let (_, latest) = catch_up(&mut clients, "a-live", json!({})).await;
    assert_eq!(
        latest,
        expected[expected.len() - 50..],
        "catch-up without `after`: the latest 50"
    );
    clients.assert_no_unasked_disconnect();
    clients.exit().await;
}

#[tokio::test]
async fn mailers_that_disagree_on_the_live_token_show_anonymous_viewers_masked_recipients_only() {
    let test =
        "mailers_that_disagree_on_the_live_token_show_anonymous_viewers_masked_recipients_only";
    let Some(mut clients) = SocketClients::start(test).await else {
        return;
    };
    let live_token = format!("live-{}", uuid::Uuid::new_v4());
    let Some(pair) = MailerPair::start_with(
        test,
        SmtpSink::start(),
        &[("FACTEUR_MAILER__LIVE_TOKEN", &live_token)],
    )
    .await
    else {
        return;
    };
    let (a, b) = (pair.a_url(), pair.b_url());
    clients.connect("a-sender", &a, "/", service_auth()).await;
    clients.connect("b-sender", &b, "/", service_auth()).await;
    clients
        .connect("a-holder", &a, "/live", json!({"token": live_token}))
        .await;
    clients.connect("b-anonymous", &b, "/live", json!({})).await;

    // Act: mails through the mailer with the live token and through the one without.
    let on_a: Vec<Value> = (0..10).map(|n| mail_request("hidden-a", n)).collect();
    let on_b: Vec<Value> = (0..10).map(|n| mail_request("hidden-b", n)).collect();
    let refs_a = send_all(&mut clients, "a-sender", &on_a).await;
    let refs_b = send_all(&mut clients, "b-sender", &on_b).await;
    assert_accepted(&clients, &refs_a, &on_a).await;
    assert_accepted(&clients, &refs_b, &on_b).await;
    let requests: Vec<Value> = on_a.iter().chain(&on_b).cloned().collect();
    let (ids, mut request_of) = (ids_of(&requests), by_id(&requests));
    let expected: Vec<Expected> = [
        ("a-holder", "mail-activity", "queued"),
        ("a-holder", "mail-activity", "sent"),
        ("b-anonymous", "mail-activity", "queued"),
        ("b-anonymous", "mail-activity", "sent"),
    ]
    .map(|(s, e, st)| (s, e, st, ids.clone()))
    .into();
    wait_heard(&clients, "every mail's activity on both viewers", &expected).await;
    let fenced = fence(&mut clients, &pair, &["a-holder", "b-anonymous"]).await;
    request_of.extend(by_id(&fenced));

    // Assert: the anonymous viewer of B saw no recipient whole, whichever mailer sent it;
    // the token holder of A saw every one whole.
    let anonymous = clients.received("b-anonymous", "mail-activity");
    for event in &anonymous {
        let request = &request_of[event["id"].as_str().unwrap_or("")];
        assert_eq!(
            event["to"],
            masked(request),
            "B's anonymous viewer: {event}"
        );
    }
    let shown = format!("{anonymous:?}");
    for part in ["hidden", "Ada", "Lovelace"] {
        assert!(
            !shown.contains(part),
            "{part:?} shown to B's anonymous viewer: {shown}"
        );
    }
    for event in clients.received("a-holder", "mail-activity") {
        let request = &request_of[event["id"].as_str().unwrap_or("")];
        assert_eq!(event["to"], request["to"], "A's token holder: {event}");
    }
    for socket in ["a-holder", "b-anonymous"] {
        clients.assert_each_once(socket, "mail-activity");
    }
    clients.assert_no_unasked_disconnect();
    clients.exit().await;
}

#[tokio::test]
async fn with_redis_gone_each_mailer_keeps_sending_and_its_own_clients_keep_their_events() {
    let test = "with_redis_gone_each_mailer_keeps_sending_and_its_own_clients_keep_their_events";
    let Some(mut clients) = SocketClients::start(test).await else {
        return;
    };
    // Nine mails in ten through A, at 400 ms each: they are still going out when Redis dies,
    // and B, soon done with its own, takes some of A's from the store.
    let smtp = SmtpSink::start_slow(Duration::from_millis(400));
    let Some(mut pair) = MailerPair::start(test, smtp).await else {
        return;
    };
    let (a, b) = (pair.a_url(), pair.b_url());
    clients.connect("a-sender", &a, "/", service_auth()).await;
    clients.connect("b-sender", &b, "/", service_auth()).await;
    clients.connect("a-live", &a, "/live", json!({})).await;
    clients.connect("b-live", &b, "/live", json!({})).await;

    // Act: half the mails, Redis killed while they go out, then the other half.
    let on_a: Vec<Value> = (0..90).map(|n| mail_request("down-a", n)).collect();
    let on_b: Vec<Value> = (0..10).map(|n| mail_request("down-b", n)).collect();
    let mut refs_a = send_all(&mut clients, "a-sender", &on_a[..45]).await;
    let mut refs_b = send_all(&mut clients, "b-sender", &on_b[..5]).await;
    pair.redis.kill();
    let (noticed, _) = pair
        .wait_cluster("disconnected", Duration::from_secs(20))
        .await;
    refs_a.extend(send_all(&mut clients, "a-sender", &on_a[45..]).await);
    refs_b.extend(send_all(&mut clients, "b-sender", &on_b[5..]).await);
    assert_accepted(&clients, &refs_a, &on_a).await;
    assert_accepted(&clients, &refs_b, &on_b).await;
    let (ids_a, ids_b) = (ids_of(&on_a), ids_of(&on_b));
    let all: Vec<String> = ids_a.iter().chain(&ids_b).cloned().collect();
    wait_all_sent(&pair.stack, &all, WAIT).await;
    let mails = pair.stack.smtp.wait_for(all.len(), WAIT).await;
    assert!(
        mails.len() >= all.len(),
        "{} of {} mails reached SMTP",
        mails.len(),
        all.len()
    );
    let mails = pair.stack.settled_mails().await;

    // Nothing lost, nothing twice.
    let (by, times) = senders(&mails);
    assert_eq!(times.len(), all.len(), "distinct mails at SMTP");
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");

    // Each mailer's own clients: a sender hears of those of its mails its own mailer sent,
    // `/live` of every mail its mailer took and every mail it sent. A mail one mailer took
    // and the other sent cannot reach its sender while Redis is away: counted, not required.
    let sent_by = |mailer: &str, ids: &[String]| -> Vec<String> {
        ids.iter().filter(|id| by[*id] == mailer).cloned().collect()
    };
    let own: Vec<Expected> = vec![
        ("a-sender", "mail-status", "sent", sent_by("a", &ids_a)),
        ("b-sender", "mail-status", "sent", sent_by("b", &ids_b)),
        ("a-live", "mail-activity", "queued", ids_a.clone()),
        ("a-live", "mail-activity", "sent", sent_by("a", &all)),
        ("b-live", "mail-activity", "queued", ids_b.clone()),
        ("b-live", "mail-activity", "sent", sent_by("b", &all)),
    ];
    wait_heard(
        &clients,
        "each mailer's own clients to hear of its own mails",
        &own,
    )
    .await;
    let (_, down) = pair
        .wait_cluster("disconnected", Duration::from_secs(1))
        .await;
    let (a_by_b, b_by_a) = (sent_by("b", &ids_a), sent_by("a", &ids_b));
    report(&format!(
        "cluster, Redis killed during 100 sends: /health said disconnected after {noticed:?} (HTTP {} and {}); SMTP got {} distinct, {} in all ({} from A, {} from B); mail-status across mailers: A's sender {} of its {} sent by B, B's sender {} of its {} sent by A",
        down[0].0,
        down[1].0,
        times.len(),
        mails.len(),
        sent_by("a", &all).len(),
        sent_by("b", &all).len(),
        clients.heard("a-sender", "mail-status", "sent", &a_by_b),
        a_by_b.len(),
        clients.heard("b-sender", "mail-status", "sent", &b_by_a),
        b_by_a.len(),
    ));
    assert!(
        down.iter().all(|(_, body)| body["status"] == "ok"),
        "a mailer without Redis is still ready: {down:?}"
    );

    // Redis back on the same port: events cross again, without a restart.
    pair.redis.restart().await;
    let (back, _) = pair
        .wait_cluster("connected", Duration::from_secs(30))
        .await;
    let (after_a, after_b) = (mail_request("back-a", 0), mail_request("back-b", 0));
    let mut latencies = Vec::new();
    for (sender, watcher, request) in [
        ("a-sender", "b-live", &after_a),
        ("b-sender", "a-live", &after_b),
    ] {
        let reference = clients.emit(sender, "send-mail", request.clone()).await;
        let emitted = clients
            .wait_for_line("the emit", Duration::from_secs(5), |l| {
                l["ref"] == reference && l["event"] == "emitted"
            })
            .await;
        let seen = clients
            .wait_for_line(
                &format!("{watcher} to see {sender}'s mail"),
                Duration::from_secs(10),
                |l| {
                    l["socket"] == watcher
                        && l["event"] == "mail-activity"
                        && l["payload"]["id"] == request["id"]
                        && l["payload"]["status"] == "queued"
                },
            )
            .await;
        let took = seen["t"].as_i64().unwrap_or(i64::MAX) - emitted["t"].as_i64().unwrap_or(0);
        latencies.push(took);
        assert_eq!(clients.ack(&reference, WAIT).await["status"], "accepted");
        assert!(
            took <= 2000,
            "{watcher} saw {sender}'s mail {took} ms after it was sent"
        );
    }
    let back_ids = ids_of(&[after_a, after_b]);
    wait_all_sent(&pair.stack, &back_ids, WAIT).await;
    let crossing: Vec<Expected> = vec![
        ("a-sender", "mail-status", "sent", back_ids[..1].to_vec()),
        ("b-sender", "mail-status", "sent", back_ids[1..].to_vec()),
        ("a-live", "mail-activity", "sent", back_ids.clone()),
        ("b-live", "mail-activity", "sent", back_ids.clone()),
    ];
    wait_heard(
        &clients,
        "the mails after Redis came back on every client",
        &crossing,
    )
    .await;
    fence(&mut clients, &pair, &["a-live", "b-live"]).await;
    for (socket, event) in [
        ("a-sender", "mail-status"),
        ("b-sender", "mail-status"),
        ("a-live", "mail-activity"),
        ("b-live", "mail-activity"),
    ] {
        clients.assert_each_once(socket, event);
    }
    report(&format!(
        "cluster, Redis back: /health connected after {back:?}; a mail on A seen on B's /live after {} ms, a mail on B seen on A's /live after {} ms",
        latencies[0], latencies[1]
    ));
    clients.assert_no_unasked_disconnect();
    clients.exit().await;
}

/// A `/live` viewer of one mailer (no cluster) is away while 100 mails go out, then asks
/// `catch-up` from the last cursor it saw.
async fn a_live_viewer_catches_up_on_what_it_missed(test: &str, store: Option<&FreshDatabase>) {
    let Some(mut clients) = SocketClients::start(test).await else {
        return;
    };
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    if let Some(store) = store {
        stack.set_env("FACTEUR_MAILER__DATABASE", &store.url());
    }
    stack.start_mailer().await;
    let url = stack.mailer_url();
    let post = async |request: &Value| {
        let response = stack
            .http()
            .post(format!("{url}/mails"))
            .bearer_auth(SERVICE_TOKEN)
            .json(request)
            .send()
            .await
            .expect("POST /mails");
        let status = response.status();
        assert_eq!(status, StatusCode::ACCEPTED, "{:?}", response.text().await);
    };
    clients.connect("live", &url, "/live", json!({})).await;
    let warm_up = mail_request("warm", 0);
    post(&warm_up).await;
    wait_heard(
        &clients,
        "the warm-up mail on /live",
        &[("live", "mail-activity", "sent", ids_of(&[warm_up]))],
    )
    .await;
    let seen = clients.received("live", "mail-activity");
    let last = cursor_of(seen.last().expect("an event"));
    clients.close("live").await;

    // Act: 100 mails while the viewer is away, then the catch-up.
    let requests: Vec<Value> = (0..100).map(|n| mail_request("missed", n)).collect();
    let (ids, request_of) = (ids_of(&requests), by_id(&requests));
    for request in &requests {
        post(request).await;
    }
    wait_all_sent(&stack, &ids, WAIT).await;
    clients
        .connect("live-again", &url, "/live", json!({}))
        .await;
    let (answer, listed) = catch_up(&mut clients, "live-again", json!({"after": last})).await;

    let cursors: Vec<&String> = listed.iter().map(|(c, _)| c).collect();
    let listed_ids: Vec<String> = listed.iter().map(|(_, id)| id.clone()).collect();
    let unique: HashSet<&String> = listed_ids.iter().collect();
    report(&format!(
        "catch-up after {last} on {}: {} items, {} distinct, cursors {:?} to {:?}, answer cursor {}",
        if store.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        listed.len(),
        unique.len(),
        cursors.first(),
        cursors.last(),
        answer["cursor"]
    ));
    assert_eq!(
        unique,
        ids.iter().collect::<HashSet<_>>(),
        "exactly the 100 deliveries changed while away"
    );
    assert_eq!(listed.len(), 100, "each once");
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {cursors:?}"
    );
    assert!(*cursors[0] > last, "nothing from before {last}");
    for item in answer["items"].as_array().expect("items") {
        let request = &request_of[item["id"].as_str().unwrap_or("")];
        assert_eq!(item["status"], "sent", "each at its latest state: {item}");
        assert_eq!(item["template"], "welcome", "{item}");
        assert_eq!(item["to"], masked(request), "{item}");
    }
    let answered = cursor_of(&answer);
    assert!(
        answered >= *cursors[99],
        "the answer's cursor {answered} is before its last item"
    );

    let (_, latest) = catch_up(&mut clients, "live-again", json!({})).await;
    assert_eq!(
        latest,
        listed[50..],
        "without `after`: the latest 50, oldest first"
    );
    let refused = clients
        .emit_with_ack("live-again", "catch-up", json!({"after": "yesterday"}))
        .await;
    assert_eq!(refused["error"], "invalid_cursor", "{refused}");
    assert!(
        refused["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{refused}"
    );
    clients.assert_no_unasked_disconnect();
    clients.exit().await;
}

#[tokio::test]
async fn a_live_viewer_back_from_a_disconnect_catches_up_on_exactly_what_it_missed_on_sqlite() {
    let test =
        "a_live_viewer_back_from_a_disconnect_catches_up_on_exactly_what_it_missed_on_sqlite";
    a_live_viewer_catches_up_on_what_it_missed(test, None).await;
}

#[tokio::test]
async fn a_live_viewer_back_from_a_disconnect_catches_up_on_exactly_what_it_missed_on_postgresql() {
    let test =
        "a_live_viewer_back_from_a_disconnect_catches_up_on_exactly_what_it_missed_on_postgresql";
    if !available(POSTGRES, test) {
        return;
    }
    let store = FreshDatabase::create("catch_up");
    a_live_viewer_catches_up_on_what_it_missed(test, Some(&store)).await;
}
