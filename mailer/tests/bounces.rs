//! The bounce intake against the real mailer: mails leave with the envelope sender
//! `bounce+{id}@{domain}`; reports built by a mail library (lettre) and sent over SMTP by an
//! SMTP client (lettre's) to that address change what the contract says, and every event door
//! tells it: `mail-status` (the official socket.io client), `mail.bounced` on the AMQP events
//! exchange, the webhook, the record and the suppression list.

use crate::common::{TestApp, fast_options, mail_request, smtp_config, spawn_with, test_config};
use crate::webhooks::Endpoint;
use futures_util::StreamExt;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use testkit::smtp::SmtpSink;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const DOMAIN: &str = "bounces.facteur.test";

/// A mailer on AMQP (when RabbitMQ answers) with a bounce intake, an SMTP sink and a webhook
/// endpoint that wants every status.
struct Setup {
    app: TestApp,
    smtp: SmtpSink,
    intake: SocketAddr,
    hook: Endpoint,
}

impl Setup {
    async fn start(amqp: bool) -> Setup {
        let smtp = SmtpSink::start();
        let dir = TempDir::new().expect("a temporary directory");
        let mut config = test_config(&dir);
        config.mailer.smtp = Some(smtp_config(smtp.addr()));
        // Port 0: a port picked now and bound later could be taken meanwhile by another
        // test's server.
        config.mailer.bounces = Some(domain::config::BouncesConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            domain: DOMAIN.into(),
        });
        config.mailer.webhooks.allow_private_targets = true;
        if amqp {
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            config.transport.kind = domain::config::TransportKind::Amqp;
            config.transport.amqp.exchange = format!("facteur.test.{suffix}");
            config.transport.amqp.queue = format!("facteur.test.{suffix}.requests");
        }
        let app = spawn_with(config, fast_options(), Arc::new(dir)).await;
        let intake = app.bounces.expect("the bounce receiver listens");
        let hook = Endpoint::start(&[]).await;
        let (status, body) = app
            .post(
                "/webhooks",
                &json!({"url": hook.url, "events": ["bounced", "complained"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Setup {
            app,
            smtp,
            intake,
            hook,
        }
    }

    /// Sends a welcome mail to `to` and waits until the SMTP server took it.
    async fn sent_mail(&self, to: &str) -> String {
        let mut request = mail_request("welcome", "en");
        request["to"]["email"] = json!(to);
        let (status, answer) = self.app.post_mail(&request).await;
        assert_eq!(status, 202, "{answer}");
        let id = request["id"].as_str().expect("an id").to_string();
        self.app
            .wait_for_status(&id, "sent", Duration::from_secs(20))
            .await;
        id
    }

    /// Sends `message` to `bounce+{id}@DOMAIN` over SMTP, from the null sender, as a
    /// receiving server does.
    async fn report(&self, id: &str, message: &Message) {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.intake.port())
            .build();
        let envelope = Envelope::new(
            None,
            vec![format!("bounce+{id}@{DOMAIN}").parse().expect("an address")],
        )
        .expect("an envelope");
        let answer = transport
            .send_raw(&envelope, &message.formatted())
            .await
            .expect("the intake takes the report");
        assert!(answer.is_positive());
    }
}

/// A delivery status notification as a receiving server writes one, built by lettre.
fn dsn(id: &str, recipient: &str, status: &str, diagnostic: &str) -> Message {
    let fields = format!(
        "Reporting-MTA: dns; mx.example.net\r\n\
         Arrival-Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: {}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n",
        if status.starts_with('5') {
            "failed"
        } else {
            "delayed"
        }
    );
    report(
        id,
        "delivery-status",
        "message/delivery-status",
        "Your message could not be delivered.",
        fields,
    )
}

/// An abuse report (RFC 5965), built by lettre.
fn arf(id: &str, recipient: &str) -> Message {
    let fields = format!(
        "Feedback-Type: abuse\r\n\
         User-Agent: SomeGenerator/1.0\r\n\
         Version: 1\r\n\
         Original-Mail-From: <bounce+{id}@{DOMAIN}>\r\n\
         Original-Rcpt-To: <{recipient}>\r\n"
    );
    report(
        id,
        "feedback-report",
        "message/feedback-report",
        "This is an email abuse report.",
        fields,
    )
}

fn report(id: &str, kind: &str, part: &str, text: &str, fields: String) -> Message {
    let report = MultiPart::builder()
        .header(
            ContentType::parse(&format!(
                "multipart/report; report-type={kind}; boundary=\"report-{id}\""
            ))
            .expect("a content type"),
        )
        .singlepart(SinglePart::plain(text.to_string()))
        .singlepart(
            SinglePart::builder()
                .header(ContentType::parse(part).expect("a content type"))
                .body(fields),
        );
    Message::builder()
        .from(
            "Mail Delivery System <mailer-daemon@mx.example.net>"
                .parse()
                .expect("an address"),
        )
        .to(format!("bounce+{id}@{DOMAIN}").parse().expect("an address"))
        .subject("Report")
        .multipart(report)
        .expect("a message")
}

async fn suppression_reason(app: &TestApp, email: &str) -> Option<String> {
    let (_, page) = app.get("/suppressions?per_page=100").await;
    page["items"]
        .as_array()?
        .iter()
        .find(|e| e["email"] == email)
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
}

/// A 5.1.1 notification: `bounced` with the diagnostic, the address suppressed, and
/// `mail-status`, `mail.bounced` on AMQP and the webhook all tell it; a 4.2.2 one only adds
/// to the history.
#[tokio::test]
async fn a_bounce_marks_the_mail_suppresses_the_address_and_every_door_tells_it() {
    let test = "a_bounce_marks_the_mail_suppresses_the_address_and_every_door_tells_it";
    let Some(modules) = crate::common::node_package(test, "socket.io-client") else {
        return;
    };
    let amqp = testkit::skip::available(testkit::skip::RABBITMQ, test);
    let s = Setup::start(amqp).await;
    let to = "nobody@example.org";
    let id = s.sent_mail(to).await;
    let sent = s.smtp.mails_for(&id);
    assert_eq!(
        sent[0].from,
        format!("bounce+{id}@{DOMAIN}"),
        "the VERP envelope sender"
    );

    // Listeners on the other doors, before the report.
    let events = if amqp {
        let names = transport::amqp::TopologyNames::of(&s.app.config.transport.amqp);
        Some((names.clone(), crate::amqp::observe_events(&names).await))
    } else {
        None
    };
    let joined = TempDir::new().expect("a folder");
    let flag = joined.path().join("joined");
    let watcher = {
        let (modules, base, token, id, flag) = (
            modules.clone(),
            s.app.base.clone(),
            s.app.token.clone(),
            id.clone(),
            flag.display().to_string(),
        );
        tokio::spawn(async move {
            crate::socketio_js::run_script(
                &modules,
                "bounce_status.js",
                &[&base, &token, &id, "bounced", &flag],
            )
            .await
        })
    };
    assert!(
        testkit::eventually(Duration::from_secs(15), || async { flag.exists() }).await,
        "the socket.io client joined"
    );

    // A delay first: history only.
    s.report(&id, &dsn(&id, to, "4.2.2", "452 4.2.2 Mailbox full"))
        .await;
    let delayed = testkit::eventually(Duration::from_secs(10), || async {
        s.app.get(&format!("/mails/{id}")).await.1["reports"][0]["kind"] == "delay"
    })
    .await;
    let (_, record) = s.app.get(&format!("/mails/{id}")).await;
    assert!(delayed, "{record}");
    assert_eq!(record["status"], "sent");
    assert_eq!(suppression_reason(&s.app, to).await, None);

    s.report(
        &id,
        &dsn(
            &id,
            to,
            "5.1.1",
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
        ),
    )
    .await;
    let record = s
        .app
        .wait_for_status(&id, "bounced", Duration::from_secs(10))
        .await;
    let error = record["last_error"].as_str().expect("an error");
    assert!(
        error.contains("5.1.1") && error.contains("User unknown"),
        "{record}"
    );
    assert_eq!(record["reports"][1]["kind"], "bounce", "{record}");
    assert_eq!(record["reports"][1]["status"], "5.1.1");
    let reason = suppression_reason(&s.app, to).await.expect("suppressed");
    assert!(reason.contains("User unknown"), "{reason}");

    let seen = watcher.await.expect("the watcher");
    let statuses: Vec<&str> = seen["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(statuses, ["bounced"], "{seen:?}");
    let hooked = s.hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(hooked[0].json()["type"], "mail.bounced");
    assert_eq!(hooked[0].json()["data"]["id"], id.as_str());
    if let Some((names, (connection, _channel, mut consumer))) = events {
        let event = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let delivery = consumer
                    .next()
                    .await
                    .expect("an event")
                    .expect("a delivery");
                if delivery.routing_key.as_str() == "mail.bounced" {
                    return serde_json::from_slice::<Value>(&delivery.data).expect("JSON");
                }
            }
        })
        .await
        .expect("mail.bounced arrives on the events exchange");
        assert_eq!(event["id"], id.as_str());
        assert_eq!(event["status"], "bounced");
        crate::amqp::remove_topology(connection, &names).await;
    }
    // A later request to the address is not sent.
    let mut request = mail_request("welcome", "en");
    request["to"]["email"] = json!(to);
    let (_, answer) = s.app.post_mail(&request).await;
    assert_eq!(answer["status"], "accepted");
    let id2 = request["id"].as_str().expect("an id");
    s.app
        .wait_for_status(id2, "suppressed", Duration::from_secs(10))
        .await;
    assert!(
        s.app
            .metrics()
            .await
            .contains("bounce_reports_total{kind=\"bounce\"} 1")
    );
}

/// An abuse report marks the mail `complained` and suppresses the address.
#[tokio::test]
async fn a_complaint_marks_the_mail_and_suppresses_the_address() {
    let s = Setup::start(false).await;
    let to = "grumpy@example.org";
    let id = s.sent_mail(to).await;
    s.report(&id, &arf(&id, to)).await;
    let record = s
        .app
        .wait_for_status(&id, "complained", Duration::from_secs(10))
        .await;
    assert_eq!(record["reports"][0]["kind"], "complaint", "{record}");
    assert!(suppression_reason(&s.app, to).await.is_some());
    let hooked = s.hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(hooked[0].json()["type"], "mail.complained");
}

/// What is not a report for a held mail is accepted and ignored, counted; mail for another
/// domain is refused 550; a 30 MB message is refused 552; the listener answers throughout.
#[tokio::test]
async fn the_intake_refuses_other_domains_and_ignores_what_it_cannot_use() {
    let s = Setup::start(false).await;
    let to = "ada@example.org";
    let id = s.sent_mail(to).await;
    // A report for an unknown id, and a message that is no report, for a held one.
    let unknown = uuid::Uuid::new_v4().to_string();
    s.report(&unknown, &dsn(&unknown, to, "5.1.1", "550 no"))
        .await;
    let plain = Message::builder()
        .from("someone@example.net".parse().expect("an address"))
        .to(format!("bounce+{id}@{DOMAIN}").parse().expect("an address"))
        .subject("hello")
        .body(String::from("\u{1}\u{2} not a report at all"))
        .expect("a message");
    s.report(&id, &plain).await;
    let counted = testkit::eventually(Duration::from_secs(10), || async {
        s.app
            .metrics()
            .await
            .contains("bounce_reports_total{kind=\"ignored\"} 2")
    })
    .await;
    assert!(counted, "{}", s.app.metrics().await);
    assert_eq!(s.app.get(&format!("/mails/{id}")).await.1["status"], "sent");

    let mut smtp = Raw::connect(s.intake).await;
    assert!(smtp.line().await.starts_with("220"));
    let mut ehlo = smtp.say("EHLO client.example").await;
    while ehlo.starts_with("250-") {
        ehlo = smtp.line().await;
    }
    assert!(smtp.say("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        smtp.say("RCPT TO:<postmaster@example.com>")
            .await
            .starts_with("550")
    );
    assert!(
        smtp.say(&format!("RCPT TO:<bounce+{id}@elsewhere.test>"))
            .await
            .starts_with("550")
    );
    assert!(
        smtp.say(&format!("RCPT TO:<bounce+{id}@{DOMAIN}>"))
            .await
            .starts_with("250")
    );
    assert!(smtp.say("DATA").await.starts_with("354"));
    let mut chunk = String::new();
    for _ in 0..1000 {
        chunk.push_str(&"x".repeat(998));
        chunk.push_str("\r\n");
    }
    for _ in 0..30 {
        smtp.write
            .write_all(chunk.as_bytes())
            .await
            .expect("written");
    }
    assert!(smtp.say(".").await.starts_with("552"), "30 MB is refused");
    assert!(
        smtp.say("NOOP").await.starts_with("250"),
        "the session goes on"
    );
    assert!(smtp.say("QUIT").await.starts_with("221"));
    // Still serving.
    s.report(&id, &dsn(&id, to, "4.4.1", "timeout")).await;
}

/// A raw SMTP session, one command and one reply line at a time.
struct Raw {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("a connection");
        let (read, write) = stream.into_split();
        Raw {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("an answer in time")
            .expect("a line")
            .expect("an answer")
    }

    async fn say(&mut self, command: &str) -> String {
        self.write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("written");
        self.line().await
    }
}
