//! Delivery to a server that offers PIPELINING (nodemailer's smtp-server): `MAIL FROM`,
//! `RCPT TO` and `DATA` leave in one write, the mail arrives whole, and refusals of the
//! pipelined commands end the delivery as they do one command at a time.

use crate::common::node_smtp::NodeSmtp;
use crate::common::{TestApp, fast_options, mail_request, spawn_with, test_config};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

async fn spawn_against(smtp: &NodeSmtp) -> TestApp {
    let dir = TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.smtp = Some(smtp.config());
    config.mailer.max_attempts = 5;
    spawn_with(config, fast_options(), Arc::new(dir)).await
}

fn to(email: &str) -> serde_json::Value {
    let mut request = mail_request("welcome", "en");
    request["to"]["email"] = email.into();
    request
}

#[tokio::test]
async fn a_server_offering_pipelining_gets_the_envelope_commands_in_one_write() {
    let test = "a_server_offering_pipelining_gets_the_envelope_commands_in_one_write";
    let Some(smtp) = NodeSmtp::start(test, &["--watch-client"]).await else {
        return;
    };
    let app = spawn_against(&smtp).await;
    let requests: Vec<_> = (0..5).map(|i| to(&format!("ada{i}@example.com"))).collect();
    for request in &requests {
        assert_eq!(app.post_mail(request).await.0, 202);
    }
    for (i, request) in requests.iter().enumerate() {
        let id = request["id"].as_str().unwrap();
        app.wait_for_status(id, "sent", Duration::from_secs(15))
            .await;
        let mails = smtp.mails_for(id);
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert_eq!(mails[0]["message_id"], format!("<{id}@facteur.local>"));
        assert_eq!(mails[0]["to"][0], format!("ada{i}@example.com"));
        assert_eq!(mails[0]["from"], "no-reply@facteur.local");
    }
    // Without pipelining, RCPT TO is written only after the reply to MAIL FROM has come.
    let writes = smtp.client_writes();
    let together = writes
        .iter()
        .filter(|w| w.contains("MAIL FROM:") && w.contains("RCPT TO:") && w.ends_with("DATA\r\n"))
        .count();
    assert_eq!(together, 5, "the client wrote: {writes:?}");
}

#[tokio::test]
async fn refusals_of_pipelined_commands_end_the_delivery_as_one_by_one() {
    let test = "refusals_of_pipelined_commands_end_the_delivery_as_one_by_one";
    let Some(smtp) = NodeSmtp::start(test, &[]).await else {
        return;
    };
    let app = spawn_against(&smtp).await;
    let refused = to("refused@example.com");
    let later = to("later@example.com");
    let fine = to("ada@example.com");
    for request in [&refused, &later, &fine] {
        assert_eq!(app.post_mail(request).await.0, 202);
    }
    let id = |r: &serde_json::Value| r["id"].as_str().unwrap().to_string();

    // 550 to RCPT TO: failed at once, nothing delivered.
    let record = app
        .wait_for_status(&id(&refused), "failed", Duration::from_secs(15))
        .await;
    assert_eq!(record["attempts"], 1, "{record}");
    assert!(
        record["last_error"].as_str().unwrap().contains("550"),
        "{record}"
    );
    assert!(smtp.mails_for(&id(&refused)).is_empty());

    // 451 twice: retried, then sent once.
    let record = app
        .wait_for_status(&id(&later), "sent", Duration::from_secs(15))
        .await;
    assert_eq!(record["attempts"], 3, "{record}");
    assert_eq!(smtp.mails_for(&id(&later)).len(), 1);

    // The connections dropped after each refusal did not take a neighbour's mail with them.
    app.wait_for_status(&id(&fine), "sent", Duration::from_secs(15))
        .await;
    assert_eq!(smtp.mails_for(&id(&fine)).len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smtp_errors_total{class=\"transient\"} 2"),
        "{metrics}"
    );
}

/// On the pipelined path the mailer dot-stuffs the message itself: lines that begin with a
/// dot, and a line that is a lone dot (which would otherwise end the data early), arrive as
/// they were written.
#[tokio::test]
async fn lines_that_begin_with_a_dot_arrive_as_written() {
    let test = "lines_that_begin_with_a_dot_arrive_as_written";
    let Some(smtp) = NodeSmtp::start(test, &[]).await else {
        return;
    };
    let app = spawn_against(&smtp).await;
    let login = "ada\n.\n..two dots\n.one dot.";
    let mut request = to("dots@example.com");
    request["vars"]["login"] = login.into();
    assert_eq!(app.post_mail(&request).await.0, 202);
    let id = request["id"].as_str().unwrap();
    app.wait_for_status(id, "sent", Duration::from_secs(15))
        .await;
    let mails = smtp.mails_for(id);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let raw = mails[0]["raw"].as_str().expect("the raw message");
    assert!(
        raw.contains("\r\n.\r\n") && raw.contains("\r\n..two dots"),
        "the message has lines that need dot-stuffing: {raw}"
    );
    let text = testkit::smtp::Mail::parse(raw, "", &[])
        .text
        .expect("a text part");
    assert!(
        text.contains(&login.replace('\n', "\r\n")),
        "the login came through whole: {text}"
    );
}

/// The pool asks for the server's extensions with a second `EHLO`. A server that refuses it
/// still gets every mail, one command at a time.
#[tokio::test]
async fn a_server_that_refuses_a_second_ehlo_gets_one_command_at_a_time() {
    let test = "a_server_that_refuses_a_second_ehlo_gets_one_command_at_a_time";
    let Some(smtp) = NodeSmtp::start(test, &["--watch-client", "--refuse-second-ehlo"]).await
    else {
        return;
    };
    let app = spawn_against(&smtp).await;
    let requests: Vec<_> = (0..3).map(|i| to(&format!("ada{i}@example.com"))).collect();
    for request in &requests {
        assert_eq!(app.post_mail(request).await.0, 202);
    }
    for request in &requests {
        let id = request["id"].as_str().unwrap();
        let record = app
            .wait_for_status(id, "sent", Duration::from_secs(15))
            .await;
        assert_eq!(record["attempts"], 1, "{record}");
        assert_eq!(smtp.mails_for(id).len(), 1);
    }
    let writes = smtp.client_writes();
    let ehlos = writes.iter().filter(|w| w.starts_with("EHLO ")).count();
    let alone = writes
        .iter()
        .filter(|w| w.starts_with("MAIL FROM:"))
        .count();
    assert!(ehlos >= 2, "the pool asked again: {writes:?}");
    assert_eq!(alone, 3, "each MAIL FROM written alone: {writes:?}");
    assert!(
        writes
            .iter()
            .all(|w| !(w.contains("MAIL FROM:") && w.contains("RCPT TO:"))),
        "nothing pipelined: {writes:?}"
    );
}
