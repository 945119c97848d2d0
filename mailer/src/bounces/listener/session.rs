//! One SMTP conversation (RFC 5321, with the extensions EHLO names): greeting, commands, the
//! message, and the hand-over of each accepted message to the caller before its 250.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use domain::MailRequestId;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::command;
use super::lines::{CommandLine, DataStep, MessageData, read_command};
use super::{Inbound, Intake};
use crate::bounces::report;

/// The longest command line, its line end included; longer ones are answered 500 and dropped.
pub(super) const MAX_COMMAND_LINE: usize = 4096;

/// What a wait ended on.
enum Wait<T> {
    Done(T),
    TimedOut,
    ShuttingDown,
}

/// Whether the conversation goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// One client's conversation.
pub(super) struct Session {
    intake: Arc<Intake>,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shutdown: watch::Receiver<bool>,
    deadline: Instant,
    greeted: bool,
    /// The accepted recipients' ids from `MAIL` on; `None` outside a transaction.
    transaction: Option<Vec<MailRequestId>>,
}

impl Session {
    /// A conversation on `stream`, whose time starts now.
    pub(super) fn new(
        stream: TcpStream,
        intake: Arc<Intake>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        // Replies are small and often several at once (pipelining): Nagle would hold them back.
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let deadline = Instant::now() + intake.limits.session_timeout;
        Self {
            intake,
            reader: BufReader::new(reader),
            writer,
            shutdown,
            deadline,
            greeted: false,
            transaction: None,
        }
    }

    /// Talks with the client until it quits, closes, times out or the receiver shuts down.
    pub(super) async fn run(mut self) {
        let greeting = format!("220 {} ESMTP bounce intake", self.intake.domain);
        if self.reply(&greeting).await.is_err() {
            return;
        }
        loop {
            let limit = self.read_limit();
            let read = read_command(&mut self.reader, MAX_COMMAND_LINE);
            let line = bounded(&mut self.shutdown, limit, read).await;
            let flow = match line {
                Wait::Done(Ok(CommandLine::Line(line))) => self.dispatch(&line).await,
                Wait::Done(Ok(CommandLine::TooLong)) => {
                    self.answer("500 5.5.2 Line too long").await
                }
                Wait::Done(Ok(CommandLine::Closed) | Err(_)) => Flow::Close,
                Wait::TimedOut => self.time_out().await,
                Wait::ShuttingDown => self.shut_down().await,
            };
            if flow == Flow::Close {
                return;
            }
        }
    }

    async fn dispatch(&mut self, line: &[u8]) -> Flow {
        let line = String::from_utf8_lossy(line);
        let (verb, args) = command::split(&line);
        let reply: Cow<'static, str> = match verb.as_str() {
            "EHLO" => self.hello(args, true),
            "HELO" => self.hello(args, false),
            "MAIL" => self.mail(args).into(),
            "RCPT" => self.rcpt(args).into(),
            "DATA" => return self.data().await,
            "RSET" => {
                self.transaction = None;
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "VRFY" => "252 2.5.0 Cannot verify, but will take mail for bounce addresses".into(),
            "QUIT" => {
                let _ = self.reply("221 2.0.0 Bye").await;
                return Flow::Close;
            }
            "EXPN" | "HELP" | "STARTTLS" | "AUTH" | "BDAT" | "ETRN" | "TURN" | "SEND" | "SOML"
            | "SAML" => "502 5.5.1 Command not implemented".into(),
            _ => "500 5.5.2 Command unrecognized".into(),
        };
        self.answer(&reply).await
    }

    /// `EHLO`/`HELO`: a new greeting also ends any transaction (RFC 5321 §4.1.4).
    fn hello(&mut self, args: &str, extended: bool) -> Cow<'static, str> {
        if args.is_empty() {
            return "501 5.5.4 Syntax: EHLO or HELO and a domain".into();
        }
        self.greeted = true;
        self.transaction = None;
        let domain = &self.intake.domain;
        if !extended {
            return format!("250 {domain}").into();
        }
        let max = self.intake.limits.max_message_bytes;
        format!(
            "250-{domain}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES"
        )
        .into()
    }

    /// `MAIL FROM`: any sender, the null one included (reports come from it).
    fn mail(&mut self, args: &str) -> &'static str {
        if !self.greeted {
            return "503 5.5.1 Send EHLO or HELO first";
        }
        if self.transaction.is_some() {
            return "503 5.5.1 Nested MAIL command";
        }
        let Some((_, params)) = command::path(args, "FROM:") else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>";
        };
        let max = self.intake.limits.max_message_bytes as u64;
        match command::declared_size(params) {
            Err(()) => "501 5.5.4 Syntax: SIZE=<number>",
            Ok(Some(size)) if size > max => "552 5.3.4 Message size exceeds fixed maximum",
            Ok(_) => {
                self.transaction = Some(Vec::new());
                "250 2.1.0 Ok"
            }
        }
    }

    /// `RCPT TO`: bounce addresses of this domain only; nothing is relayed.
    fn rcpt(&mut self, args: &str) -> &'static str {
        let limit = self.intake.limits.max_recipients;
        let domain = &self.intake.domain;
        let Some(ids) = self.transaction.as_mut() else {
            return "503 5.5.1 Need MAIL before RCPT";
        };
        let Some((address, _)) = command::path(args, "TO:") else {
            return "501 5.5.4 Syntax: RCPT TO:<address>";
        };
        if ids.len() >= limit {
            return "452 4.5.3 Too many recipients";
        }
        let Some(id) = command::bounce_id(address, domain) else {
            return "550 5.1.1 No such mailbox";
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
        "250 2.1.5 Ok"
    }

    /// `DATA`: the message, then its report handed over, then the answer.
    async fn data(&mut self) -> Flow {
        let ids = match &self.transaction {
            None => return self.answer("503 5.5.1 Need MAIL before DATA").await,
            Some(ids) if ids.is_empty() => {
                return self.answer("503 5.5.1 Need RCPT before DATA").await;
            }
            Some(ids) => ids.clone(),
        };
        if self
            .reply("354 End data with <CR><LF>.<CR><LF>")
            .await
            .is_err()
        {
            return Flow::Close;
        }
        let mut data = MessageData::new(self.intake.limits.max_message_bytes);
        loop {
            let limit = self.read_limit();
            match bounded(&mut self.shutdown, limit, data.read_step(&mut self.reader)).await {
                Wait::Done(Ok(DataStep::More)) => {}
                Wait::Done(Ok(DataStep::End)) => break,
                Wait::Done(Ok(DataStep::Closed) | Err(_)) => return Flow::Close,
                Wait::TimedOut => return self.time_out().await,
                Wait::ShuttingDown => return self.shut_down().await,
            }
        }
        self.transaction = None;
        match data.into_message() {
            Some(message) => self.hand_over(ids, message).await,
            None => self.answer("552 5.3.4 Message too big").await,
        }
    }

    /// Reads the message's report off the runtime's threads (a message can be megabytes), and
    /// hands it to the caller; the 250 comes only once the caller has it.
    async fn hand_over(&mut self, ids: Vec<MailRequestId>, message: Vec<u8>) -> Flow {
        let report = tokio::task::spawn_blocking(move || report::read(&message))
            .await
            .unwrap_or(report::Report::Other("unparseable"));
        let inbound = self.intake.inbound.clone();
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let sent = bounded(
            &mut self.shutdown,
            remaining,
            inbound.send(Inbound { ids, report }),
        );
        match sent.await {
            Wait::Done(Ok(())) => self.answer("250 2.0.0 Ok: queued").await,
            Wait::Done(Err(_)) => {
                let _ = self
                    .reply("421 4.3.0 Bounce intake closed, try again later")
                    .await;
                Flow::Close
            }
            Wait::TimedOut => self.answer("451 4.3.0 Busy, try again later").await,
            Wait::ShuttingDown => self.shut_down().await,
        }
    }

    /// How long the next read may take: the command timeout, within the session's time.
    fn read_limit(&self) -> Duration {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        self.intake.limits.command_timeout.min(remaining)
    }

    async fn time_out(&mut self) -> Flow {
        let reply = format!("421 4.4.2 {} Timeout, closing", self.intake.domain);
        let _ = self.reply(&reply).await;
        Flow::Close
    }

    async fn shut_down(&mut self) -> Flow {
        let reply = format!(
            "421 4.3.2 {} Shutting down, try again later",
            self.intake.domain
        );
        let _ = self.reply(&reply).await;
        Flow::Close
    }

    /// Replies, and goes on unless the reply could not be written.
    async fn answer(&mut self, text: &str) -> Flow {
        match self.reply(text).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close,
        }
    }

    /// Writes one reply; a client that does not read its replies is given up on after the
    /// command timeout.
    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let line = format!("{text}\r\n");
        let write = self.writer.write_all(line.as_bytes());
        match tokio::time::timeout(self.intake.limits.command_timeout, write).await {
            Ok(written) => written,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Waits for `work` at most `limit`, and no longer than until the receiver shuts down.
async fn bounded<F: Future>(
    shutdown: &mut watch::Receiver<bool>,
    limit: Duration,
    work: F,
) -> Wait<F::Output> {
    tokio::select! {
        biased;
        _ = shutdown.wait_for(|stopping| *stopping) => Wait::ShuttingDown,
        outcome = tokio::time::timeout(limit, work) => match outcome {
            Ok(done) => Wait::Done(done),
            Err(_) => Wait::TimedOut,
        },
    }
}
