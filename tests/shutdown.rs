//! Graceful shutdown under load: SIGTERM to either service mid-load exits 0, and once each
//! is started again every account created ends with exactly one welcome mail.

use crate::support::stack::{Kind, Stack};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::skip::{RABBITMQ, available, report};
use testkit::smtp::{SmtpSink, count_by_message_id};

/// Creates accounts one after another until `stop` is set; counts those answered 201.
async fn keep_creating(
    stack: Arc<Stack>,
    prefix: &'static str,
    created: Arc<AtomicUsize>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut n = 0;
    loop {
        let login = format!("{prefix}{n}");
        n += 1;
        let sent = stack
            .http()
            .post(format!("{}/users", stack.users_url()))
            .json(&serde_json::json!({
                "login": login, "email": format!("{login}@example.com"),
                "password": "correct horse battery", "first_name": "A", "last_name": "B"
            }))
            .send();
        tokio::select! {
            _ = stop.notified() => return,
            response = sent => {
                if response.is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED) {
                    created.fetch_add(1, Ordering::SeqCst);
                } else {
                    // The service is stopping or stopped: wait for it to come back.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn sigterm_mid_load_loses_nothing(kind: Kind) {
    let mut stack = Stack::start(kind, SmtpSink::start()).await;
    for victim in ["users", "mailer"] {
        let shared = Arc::new(stack);
        let created = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(tokio::sync::Notify::new());
        let load = tokio::spawn(keep_creating(
            shared.clone(),
            if victim == "users" { "u" } else { "m" },
            created.clone(),
            stop.clone(),
        ));
        let twenty = testkit::eventually(Duration::from_secs(60), || async {
            created.load(Ordering::SeqCst) >= 20
        })
        .await;
        assert!(twenty, "20 accounts are created under load");
        stop.notify_one();
        load.await.expect("load task");
        stack = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("stack still shared"));
        let code = if victim == "users" {
            stack.terminate_users().await
        } else {
            stack.terminate_mailer().await
        };
        assert_eq!(
            code,
            Some(0),
            "{victim} exits 0 on SIGTERM; log:\n{}",
            stack.log(victim)
        );
        if victim == "users" {
            stack.start_users().await;
        } else {
            stack.start_mailer().await;
        }
    }
    // Every account answered 201 before its service stopped: count them from the users API.
    let listed: serde_json::Value = stack
        .users_admin(reqwest::Method::GET, "/users?per_page=100")
        .send()
        .await
        .expect("GET /users")
        .json()
        .await
        .expect("JSON");
    let expected = listed["total"].as_u64().expect("a total") as usize;
    stack.smtp.wait_for(expected, Duration::from_secs(60)).await;
    let mails = stack.settled_mails().await;
    let (counts, _) = count_by_message_id(&mails);
    report(&format!(
        "graceful shutdown [{}]: accounts {expected}, mails received {} distinct, duplicates {}",
        kind.as_str(),
        counts.len(),
        mails.len() - counts.len()
    ));
    assert_eq!(counts.len(), expected, "every account has its welcome mail");
    assert_eq!(mails.len(), expected, "and only one");
    // A graceful stop records every finished hand-off before exiting, so the restarted
    // mailer finds no delivery left mid-send.
    let resends = stack
        .metric(&stack.mailer_url(), "smtp_possible_resends_total")
        .await;
    assert_eq!(resends, 0.0, "no possible resend after a graceful stop");
}

#[tokio::test]
async fn socketio_sigterm_mid_load_loses_nothing() {
    sigterm_mid_load_loses_nothing(Kind::Socketio).await;
}

#[tokio::test]
async fn amqp_sigterm_mid_load_loses_nothing() {
    if !available(RABBITMQ, "amqp_sigterm_mid_load_loses_nothing") {
        return;
    }
    let _broker = crate::faults::broker_shared().await;
    sigterm_mid_load_loses_nothing(Kind::Amqp).await;
}
