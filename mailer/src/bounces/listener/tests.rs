//! The receiver on a local port, driven by lettre's SMTP client and by raw sessions.

use std::net::SocketAddr;
use std::time::Duration;

use domain::MailRequestId;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Inbound, IntakeLimits, serve};
use crate::bounces::report::Report;
use crate::bounces::report::tests::{POSTFIX_DSN, crlf, lettre_dsn};

const DOMAIN: &str = "bounces.example.com";

/// Long enough for any step of these tests, short enough to fail fast.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running receiver: its address, the caller's end of its queue, and its stop switch.
struct Intake {
    address: SocketAddr,
    inbound: mpsc::Receiver<Inbound>,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<()>,
}

impl Intake {
    async fn start(limits: IntakeLimits, queue: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let address = listener.local_addr().expect("a bound listener");
        let (sender, inbound) = mpsc::channel(queue);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = tokio::spawn(serve(listener, DOMAIN.into(), limits, sender, shutdown));
        Self {
            address,
            inbound,
            stop: Some(stop),
            served,
        }
    }

    async fn next_inbound(&mut self) -> Inbound {
        tokio::time::timeout(PATIENCE, self.inbound.recv())
            .await
            .expect("a message in time")
            .expect("an open queue")
    }

    async fn client(&self) -> Client {
        let stream = TcpStream::connect(self.address)
            .await
            .expect("a connection");
        let (reader, writer) = stream.into_split();
        Client {
            reader: BufReader::new(reader),
            writer,
        }
    }

    /// A client past the greeting and EHLO.
    async fn greeted_client(&self) -> Client {
        let mut client = self.client().await;
        assert_eq!(code(&client.reply().await), "220");
        assert_eq!(code(&client.command("EHLO client.example").await), "250");
        client
    }
}

/// A raw SMTP client.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("a write");
    }

    /// The next reply, all its lines; empty when the server closed the connection.
    async fn reply(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.read_reply())
            .await
            .expect("a reply in time")
    }

    async fn read_reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.expect("a read") == 0 {
                return reply;
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Whether the server closed the connection (after the last reply read).
    async fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, self.reader.read_to_end(&mut rest))
            .await
            .expect("a close in time")
            .is_ok_and(|_| rest.is_empty())
    }
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

fn bounce_address(id: MailRequestId) -> String {
    format!("bounce+{id}@{DOMAIN}")
}

#[tokio::test]
async fn a_dsn_sent_with_lettre_reaches_the_caller_with_its_id() {
    let mut intake = Intake::start(IntakeLimits::default(), 8).await;
    let id = MailRequestId::new();
    let to = bounce_address(id);
    let message = lettre_dsn(&to, "gone@example.org", "5.1.1");
    let envelope = Envelope::new(None, vec![to.parse().expect("an address")]).expect("an envelope");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(intake.address.port())
        .build();

    let sent = tokio::time::timeout(
        PATIENCE,
        transport.send_raw(&envelope, &message.formatted()),
    )
    .await
    .expect("an answer in time");

    assert!(sent.expect("accepted").is_positive());
    let inbound = intake.next_inbound().await;
    assert_eq!(inbound.ids, vec![id]);
    let Report::Delivery(recipients) = inbound.report else {
        panic!("expected a delivery report, got {:?}", inbound.report);
    };
    assert_eq!(recipients[0].status, "5.1.1");
    assert_eq!(
        recipients[0].final_recipient.as_deref(),
        Some("gone@example.org")
    );
}

#[tokio::test]
async fn ehlo_advertises_the_size_limit_and_the_extensions() {
    let intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.client().await;
    client.reply().await;

    let reply = client.command("EHLO client.example").await;

    for line in [
        "250-SIZE 1048576",
        "250-8BITMIME",
        "250-PIPELINING",
        "250 ENHANCEDSTATUSCODES",
    ] {
        assert!(reply.contains(line), "{reply}");
    }
    assert!(
        !reply.contains("STARTTLS") && !reply.contains("AUTH"),
        "{reply}"
    );
}

#[tokio::test]
async fn only_bounce_addresses_of_the_domain_are_accepted() {
    let intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;
    let id = MailRequestId::new();
    assert_eq!(code(&client.command("MAIL FROM:<>").await), "250");

    let refused = [
        "RCPT TO:<someone@other.example>".to_owned(),
        format!("RCPT TO:<bounce+not-a-uuid@{DOMAIN}>"),
        format!("RCPT TO:<someone@{DOMAIN}>"),
        format!("RCPT TO:<bounce+{id}@other.example>"),
        format!("RCPT TO:<bounce+{id}@{DOMAIN}.other.example>"),
    ];
    for command in refused {
        let reply = client.command(&command).await;
        assert!(reply.starts_with("550 5.1.1"), "{command}: {reply}");
    }
    let upper = format!("RCPT TO:<bounce+{id}@{}>", DOMAIN.to_uppercase());
    assert_eq!(code(&client.command(&upper).await), "250");
}

#[tokio::test]
async fn recipients_past_the_limit_get_452() {
    let limits = IntakeLimits {
        max_recipients: 2,
        ..IntakeLimits::default()
    };
    let intake = Intake::start(limits, 8).await;
    let mut client = intake.greeted_client().await;
    client.command("MAIL FROM:<>").await;

    let mut codes = Vec::new();
    for _ in 0..3 {
        let rcpt = format!("RCPT TO:<{}>", bounce_address(MailRequestId::new()));
        codes.push(client.command(&rcpt).await);
    }

    assert_eq!(code(&codes[0]), "250");
    assert_eq!(code(&codes[1]), "250");
    assert!(codes[2].starts_with("452 4.5.3"), "{}", codes[2]);
}

#[tokio::test]
async fn pipelined_mail_rcpt_and_data_in_one_write_are_answered_in_order() {
    let mut intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;
    let (first, second) = (MailRequestId::new(), MailRequestId::new());
    let pipelined = format!(
        "MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<{}>\r\nRCPT TO:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n",
        bounce_address(first),
        bounce_address(second),
        bounce_address(first),
    );

    client.send(pipelined.as_bytes()).await;

    for expected in ["250", "250", "250", "250", "354"] {
        assert_eq!(code(&client.reply().await), expected);
    }
    client.send(crlf(POSTFIX_DSN).as_bytes()).await;
    client.send(b".\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    let inbound = intake.next_inbound().await;
    assert_eq!(inbound.ids, vec![first, second]);
    assert!(
        matches!(inbound.report, Report::Delivery(_)),
        "{:?}",
        inbound.report
    );
}

#[tokio::test]
async fn a_session_with_bare_lf_line_endings_works() {
    let mut intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.client().await;
    let id = MailRequestId::new();
    client.reply().await;

    let session = format!(
        "HELO client.example\nMAIL FROM:<>\nRCPT TO:<{}>\nDATA\n",
        bounce_address(id)
    );
    client.send(session.as_bytes()).await;
    for expected in ["250", "250", "250", "354"] {
        assert_eq!(code(&client.reply().await), expected);
    }
    client.send(POSTFIX_DSN.as_bytes()).await;
    client.send(b".\n").await;

    assert_eq!(code(&client.reply().await), "250");
    let Report::Delivery(recipients) = intake.next_inbound().await.report else {
        panic!("expected a delivery report");
    };
    assert_eq!(recipients[0].status, "5.1.1");
}

#[tokio::test]
async fn a_message_that_is_no_report_is_accepted_as_other() {
    let mut intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;
    let id = MailRequestId::new();
    client.command("MAIL FROM:<someone@example.org>").await;
    client
        .command(&format!("RCPT TO:<{}>", bounce_address(id)))
        .await;
    client.command("DATA").await;

    let reply = client
        .command("Subject: out of office\r\n\r\nAway.\r\n.")
        .await;

    assert_eq!(code(&reply), "250");
    let inbound = intake.next_inbound().await;
    assert_eq!(
        inbound,
        Inbound {
            ids: vec![id],
            report: Report::Other("not a report")
        }
    );
}

#[tokio::test]
async fn a_full_queue_holds_the_250_until_the_caller_takes_a_message() {
    let mut intake = Intake::start(IntakeLimits::default(), 1).await;
    let mut client = intake.greeted_client().await;
    let rcpt = format!("RCPT TO:<{}>", bounce_address(MailRequestId::new()));
    let one_message = format!("MAIL FROM:<>\r\n{rcpt}\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n");
    client.send(one_message.as_bytes()).await;
    for expected in ["250", "250", "354", "250"] {
        assert_eq!(code(&client.reply().await), expected);
    }

    client.send(one_message.as_bytes()).await;
    for expected in ["250", "250", "354"] {
        assert_eq!(code(&client.reply().await), expected);
    }
    let early = tokio::time::timeout(Duration::from_millis(300), client.read_reply()).await;
    assert!(
        early.is_err(),
        "answered before the queue had room: {early:?}"
    );

    intake.next_inbound().await;
    assert_eq!(code(&client.reply().await), "250");
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_552_and_the_session_goes_on() {
    let intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;
    let declared = client.command("MAIL FROM:<> SIZE=30000000").await;
    assert!(declared.starts_with("552 5.3.4"), "{declared}");
    client.command("MAIL FROM:<>").await;
    client
        .command(&format!(
            "RCPT TO:<{}>",
            bounce_address(MailRequestId::new())
        ))
        .await;
    assert_eq!(code(&client.command("DATA").await), "354");

    let line = [&[b'x'; 998][..], b"\r\n"].concat();
    for _ in 0..30 {
        client.send(&line.repeat(1000)).await;
    }
    client.send(b".\r\n").await;

    let reply = client.reply().await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert_eq!(code(&client.command("NOOP").await), "250");
}

#[tokio::test]
async fn garbage_and_over_long_lines_get_500_and_the_session_goes_on() {
    let intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;

    for garbage in ["\u{1}\u{2}\u{7f}garbage", "HELLO", "", "MAIL"] {
        let reply = client.command(garbage).await;
        assert!(reply.starts_with("50"), "{garbage:?}: {reply}");
    }
    client.send(&[0xFF, 0xFE, b'\r', b'\n']).await;
    assert_eq!(code(&client.reply().await), "500");
    let long = "X".repeat(100 * 1024);
    assert!(client.command(&long).await.starts_with("500 5.5.2"));
    assert_eq!(code(&client.command("EXPN staff").await), "502");
    assert_eq!(code(&client.command("STARTTLS").await), "502");
    assert_eq!(code(&client.command("VRFY postmaster").await), "252");

    assert_eq!(code(&client.command("NOOP").await), "250");
    assert_eq!(code(&client.command("QUIT").await), "221");
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn commands_out_of_order_get_503() {
    let intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.client().await;
    client.reply().await;
    let rcpt = format!("RCPT TO:<{}>", bounce_address(MailRequestId::new()));

    assert_eq!(code(&client.command("MAIL FROM:<>").await), "503");
    client.command("EHLO client.example").await;
    assert_eq!(code(&client.command(&rcpt).await), "503");
    assert_eq!(code(&client.command("DATA").await), "503");
    client.command("MAIL FROM:<>").await;
    assert_eq!(code(&client.command("MAIL FROM:<>").await), "503");
    assert_eq!(code(&client.command("DATA").await), "503");
    assert_eq!(code(&client.command("RSET").await), "250");
    assert_eq!(code(&client.command(&rcpt).await), "503");
}

#[tokio::test]
async fn connections_past_the_limit_get_421_and_are_closed() {
    let limits = IntakeLimits {
        max_connections: 2,
        ..IntakeLimits::default()
    };
    let intake = Intake::start(limits, 8).await;
    let mut first = intake.client().await;
    let mut second = intake.client().await;
    assert_eq!(code(&first.reply().await), "220");
    assert_eq!(code(&second.reply().await), "220");

    let mut extra = intake.client().await;

    let refused = extra.reply().await;
    assert!(refused.starts_with("421 4.3.2"), "{refused}");
    assert!(extra.is_closed().await);
    first.command("QUIT").await;
    assert!(first.is_closed().await);
    assert_eq!(code(&second.command("NOOP").await), "250");
    let mut freed = String::new();
    for _ in 0..100 {
        freed = intake.client().await.reply().await;
        if code(&freed) == "220" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(code(&freed), "220", "no slot was freed: {freed}");
}

#[tokio::test]
async fn a_silent_client_is_closed_with_421_after_the_command_timeout() {
    let limits = IntakeLimits {
        command_timeout: Duration::from_millis(200),
        ..IntakeLimits::default()
    };
    let intake = Intake::start(limits, 8).await;
    let mut client = intake.greeted_client().await;

    let reply = client.reply().await;

    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn shutting_down_answers_open_connections_421_and_ends_serve() {
    let mut intake = Intake::start(IntakeLimits::default(), 8).await;
    let mut client = intake.greeted_client().await;

    intake
        .stop
        .take()
        .expect("a stop switch")
        .send(())
        .expect("a running receiver");

    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.3.2"), "{reply}");
    assert!(client.is_closed().await);
    tokio::time::timeout(PATIENCE, &mut intake.served)
        .await
        .expect("serve returns in time")
        .expect("serve did not panic");
}
