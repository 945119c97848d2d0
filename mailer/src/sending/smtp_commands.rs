//! One mail's SMTP transaction on an open connection: `MAIL FROM`, each `RCPT TO`, `DATA`
//! and the message, either together (RFC 2920 pipelining) or one command at a time, through
//! lettre's public pieces: its command types, `command` (one write, then one reply) and
//! `read_response`. On the pipelined path the message is dot-stuffed here ([`dot_stuffed`]).
//!
//! lettre's own `send` does the same in turn, but its error does not say which command was
//! refused; a refusal at `RCPT TO` means the address, not the mail, so it is told apart
//! ([`PoolError::Recipient`]): the mailer puts such an address on its suppression list.

use super::smtp_pool::PoolError;
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::fmt;

/// Text that lettre's `command` writes in one write before it reads one reply: here the
/// pipelined commands, or the dot-stuffed data with its final dot.
struct Group(String);

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Addresses and message in ASCII, so `MAIL FROM` needs no `SMTPUTF8` or `BODY=8BITMIME`.
/// lettre's own `send` decides those (and refuses what the server cannot take); the rare
/// mail that needs them goes that way.
pub(super) fn plain_ascii(envelope: &Envelope, email: &[u8]) -> bool {
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    email.is_ascii() && envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii)
}

/// One mail with `MAIL FROM`, every `RCPT TO` and `DATA` in one write (RFC 2920), then their
/// replies in order, then the message. The first refusal is the error, as it is when lettre
/// sends the commands one by one; the caller then drops the connection, with any replies
/// still unread.
pub(super) async fn send_pipelined(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<Response, PoolError> {
    let mut group = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
    for to in envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    group.push_str(&Data.to_string());
    // The reply to MAIL FROM; then one per recipient, and the one to DATA (354).
    conn.command(Group(group)).await.map_err(PoolError::Smtp)?;
    for _ in envelope.to() {
        conn.read_response().await.map_err(PoolError::Recipient)?;
    }
    conn.read_response().await.map_err(PoolError::Smtp)?;
    match std::str::from_utf8(email) {
        // The message and its final dot in one write, the reply checked as lettre's
        // `message` checks it.
        Ok(text) => conn.command(Group(dot_stuffed(text))).await,
        Err(_) => conn.message(email).await,
    }
    .map_err(PoolError::Smtp)
}

/// One mail one command at a time, with the `MAIL FROM` parameters lettre's `send` would
/// give: `SMTPUTF8` for an address beyond ASCII, `BODY=8BITMIME` for a message beyond ASCII,
/// each refused here when the server does not offer it.
pub(super) async fn send_in_turn(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<Response, PoolError> {
    let mut options = Vec::new();
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    let offered = |e: Extension| conn.server_info().supports_feature(e);
    if !(envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii)) {
        if !offered(Extension::SmtpUtfEight) {
            return Err(PoolError::Unsendable(
                "an address is not ASCII and the SMTP server does not offer SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !email.is_ascii() {
        if !offered(Extension::EightBitMime) {
            return Err(PoolError::Unsendable(
                "the message is not ASCII and the SMTP server does not offer 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(PoolError::Smtp)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(PoolError::Recipient)?;
    }
    conn.command(Data).await.map_err(PoolError::Smtp)?;
    conn.message(email).await.map_err(PoolError::Smtp)
}

/// The DATA section as it goes on the wire (RFC 5321 §4.5.2): a dot doubled at the start of
/// the message and after each CRLF, then the closing `CRLF.CRLF`. This is what lettre's
/// `message` sends, but lettre copies byte by byte through a state machine; here a substring
/// search finds the few line starts that need a dot and the rest is copied in slices.
fn dot_stuffed(email: &str) -> String {
    let mut out = String::with_capacity(email.len() + 16);
    let mut rest = email;
    if rest.starts_with('.') {
        out.push('.');
    }
    while let Some(at) = rest.find("\r\n.") {
        let (line_end, next) = rest.split_at(at + 3);
        out.push_str(line_end);
        out.push('.');
        rest = next;
    }
    out.push_str(rest);
    out.push_str("\r\n.\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn dots_that_begin_a_line_are_doubled_and_the_data_ends_with_a_lone_dot() {
        assert_eq!(dot_stuffed("plain\r\nlines"), "plain\r\nlines\r\n.\r\n");
        assert_eq!(dot_stuffed(".first"), "..first\r\n.\r\n");
        assert_eq!(
            dot_stuffed("a\r\n.\r\n..b\r\n.c."),
            "a\r\n..\r\n...b\r\n..c.\r\n.\r\n"
        );
        // Dots back to back across line ends, and a dot that ends the message.
        assert_eq!(dot_stuffed("\r\n.\r\n."), "\r\n..\r\n..\r\n.\r\n");
        // Only CRLF starts a line (lettre's builder writes nothing else), and a dot in the
        // middle of a line stays single.
        assert_eq!(dot_stuffed("a\n.b c.d"), "a\n.b c.d\r\n.\r\n");
        assert_eq!(dot_stuffed(""), "\r\n.\r\n");
    }
}
