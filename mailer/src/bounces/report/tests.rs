//! Reports as real servers write them: Postfix's DSN, a Gmail-like one, a delayed one, RFC
//! 6533's internationalized one, RFC 5965's ARF examples, and one built with lettre.

use super::{Complaint, RecipientStatus, Report, read};
use lettre::message::header::ContentType;
use lettre::message::{Message, MultiPart, SinglePart};

/// Postfix's bounce(8) shape, bare LF as Postfix writes it to a local file.
pub(crate) const POSTFIX_DSN: &str = "\
Return-Path: <>
Received: by mx.example.net (Postfix)
\tid 3F2A81C0012; Tue,  1 Dec 2026 10:00:02 +0100 (CET)
Date: Tue,  1 Dec 2026 10:00:02 +0100 (CET)
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"3F2A81C0012.1764579602/mx.example.net\"
Content-Transfer-Encoding: 8bit
Message-Id: <20261201090002.3F2A81C0012@mx.example.net>

This is a MIME-encapsulated message.

--3F2A81C0012.1764579602/mx.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<nobody@example.org>: host mail.example.org[192.0.2.25] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in local
    recipient table (in reply to RCPT TO command)

--3F2A81C0012.1764579602/mx.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 3F2A81C0012
X-Postfix-Sender: rfc822; bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
Arrival-Date: Tue,  1 Dec 2026 10:00:01 +0100 (CET)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in local recipient table

--3F2A81C0012.1764579602/mx.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com>
From: Facteur <no-reply@facteur.example>
To: nobody@example.org
Subject: Welcome
Message-ID: <0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@facteur.example>

--3F2A81C0012.1764579602/mx.example.net--
";

/// Gmail's shape: the notification as text and HTML, the status, the returned message, and a
/// diagnostic folded over several lines. Sent with CRLF (`crlf`).
pub(crate) const GMAIL_DSN: &str = "\
Delivered-To: bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Date: Tue, 01 Dec 2026 01:02:03 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary=\"000000000000c0ffee0123456789\"; report-type=delivery-status

--000000000000c0ffee0123456789
Content-Type: multipart/related; boundary=\"000000000000c0ffee0123456790\"

--000000000000c0ffee0123456790
Content-Type: multipart/alternative; boundary=\"000000000000c0ffee0123456791\"

--000000000000c0ffee0123456791
Content-Type: text/plain; charset=\"UTF-8\"

** Address not found **

Your message wasn't delivered to no.such.user@gmail.com because the address couldn't be found.

--000000000000c0ffee0123456791
Content-Type: text/html; charset=\"UTF-8\"

<html><body><h2>Address not found</h2></body></html>

--000000000000c0ffee0123456791--
--000000000000c0ffee0123456790--
--000000000000c0ffee0123456789
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; smtp.facteur.example
Arrival-Date: Tue, 01 Dec 2026 01:02:02 -0800 (PST)
X-Original-Message-ID: <0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@facteur.example>

Final-Recipient: rfc822; no.such.user@gmail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:400c:c0b::1b, the server for
 the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. For more information, go to
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si12345.67 - gsmtp
Last-Attempt-Date: Tue, 01 Dec 2026 01:02:03 -0800 (PST)

--000000000000c0ffee0123456789
Content-Type: message/rfc822

Return-Path: <bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com>
From: Facteur <no-reply@facteur.example>
To: no.such.user@gmail.com
Subject: Welcome
Message-ID: <0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@facteur.example>
Content-Type: text/plain; charset=utf-8

Welcome!

--000000000000c0ffee0123456789--
";

/// A delay warning (mailbox full, will retry) for two recipients, the second without an
/// Original-Recipient; the status part is quoted-printable (`=3D` is `=`), as some servers
/// send it.
pub(crate) const DELAYED_DSN: &str = "\
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
Subject: Warning: message 1v0AbC-000Xyz-2Q delayed 24 hours
Content-Type: multipart/report; report-type=\"Delivery-Status\"; boundary=\"1764579602-eximdsn-42\"
MIME-Version: 1.0

--1764579602-eximdsn-42
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx.example.net.

--1764579602-eximdsn-42
Content-type: message/delivery-status
Content-Transfer-Encoding: quoted-printable

Reporting-MTA: dns; mx.example.net

Action: Delayed
Final-Recipient: RFC822; full@example.org
Original-Recipient: rfc822;full@example.org
Status: 4.2.2
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
Will-Retry-Until: Thu, 03 Dec 2026 10:00:02 +0000

Action: delayed
Final-Recipient: rfc822; also-full@example.org
Status: 4.2.2
Diagnostic-Code: X-Exim; 4.2.2 mailbox over quota=3D20
 (retry timeout not reached)

--1764579602-eximdsn-42--
";

/// RFC 6533: a `message/global-delivery-status` part with a `utf-8;` address.
pub(crate) const GLOBAL_DSN: &str = "\
From: postmaster@mx.example.net
To: bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"g\"

--g
Content-Type: text/plain; charset=utf-8

Échec de la remise.

--g
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: utf-8; josé@exemple.fr
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp; 550 5.1.10 Recipient address has null MX

--g--
";

/// RFC 5965 appendix B.2, the complete example, addressed to this mailer.
pub(crate) const ARF_COMPLAINT: &str = "\
From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary=\"part1_13d.2e68ed54_boundary\"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset=\"US-ASCII\"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html
Reported-Uri: mailto:user@example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <somespammer@example.net>
Received: from mailserver.example.net (mailserver.example.net
        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
";

/// RFC 5965 appendix B.1, the minimal example: no Original-Rcpt-To, a type in capitals.
const ARF_MINIMAL_NOT_SPAM: &str = "\
From: <abusedesk@example.com>
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary=\"part1_13d.2e68ed54_boundary\"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset=\"US-ASCII\"

A report.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: Not-Spam
User-Agent: SomeGenerator/1.0
Version: 1

--part1_13d.2e68ed54_boundary--
";

/// `text` with every line ending CRLF, as sent over SMTP.
pub(crate) fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A DSN for `recipient` with `status`, built with lettre's message builder.
pub(crate) fn lettre_dsn(to: &str, recipient: &str, status: &str) -> Message {
    let report_type = ContentType::parse(
        "multipart/report; report-type=delivery-status; boundary=\"lettre-dsn-boundary\"",
    )
    .expect("a valid content type");
    let status_type = ContentType::parse("message/delivery-status").expect("a valid content type");
    let fields = format!(
        "Reporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} User unknown\r\n"
    );
    let report = MultiPart::builder()
        .header(report_type)
        .singlepart(SinglePart::plain(String::from("Delivery failed.")))
        .singlepart(SinglePart::builder().header(status_type).body(fields));
    Message::builder()
        .from(
            "MAILER-DAEMON <mailer-daemon@mx.example.net>"
                .parse()
                .expect("an address"),
        )
        .to(to.parse().expect("an address"))
        .subject("Undelivered Mail Returned to Sender")
        .multipart(report)
        .expect("a complete message")
}

fn recipients(report: Report) -> Vec<RecipientStatus> {
    match report {
        Report::Delivery(recipients) => recipients,
        other => panic!("expected a delivery report, got {other:?}"),
    }
}

#[test]
fn a_postfix_dsn_gives_the_recipient_status_and_the_unfolded_diagnostic() {
    let recipients = recipients(read(POSTFIX_DSN.as_bytes()));

    assert_eq!(
        recipients,
        vec![RecipientStatus {
            final_recipient: Some("nobody@example.org".into()),
            original_recipient: Some("nobody@example.org".into()),
            action: Some("failed".into()),
            status: "5.1.1".into(),
            diagnostic: Some(
                "550 5.1.1 <nobody@example.org>: Recipient address rejected: \
                 User unknown in local recipient table"
                    .into()
            ),
        }]
    );
}

#[test]
fn a_gmail_dsn_with_crlf_and_nested_parts_gives_5_1_1() {
    let recipients = recipients(read(crlf(GMAIL_DSN).as_bytes()));

    assert_eq!(recipients.len(), 1);
    let recipient = &recipients[0];
    assert_eq!(recipient.status, "5.1.1");
    assert_eq!(
        recipient.final_recipient.as_deref(),
        Some("no.such.user@gmail.com")
    );
    assert_eq!(recipient.original_recipient, None);
    let diagnostic = recipient.diagnostic.as_deref().expect("a diagnostic");
    assert!(
        diagnostic.starts_with("550-5.1.1 The email account"),
        "{diagnostic}"
    );
    assert!(diagnostic.ends_with("- gsmtp"), "{diagnostic}");
    assert!(!diagnostic.contains(['\r', '\n']), "{diagnostic}");
}

#[test]
fn a_delay_warning_gives_4_2_2_for_each_recipient() {
    let recipients = recipients(read(crlf(DELAYED_DSN).as_bytes()));

    let summary: Vec<_> = recipients
        .iter()
        .map(|r| {
            (
                r.final_recipient.as_deref(),
                r.action.as_deref(),
                r.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("full@example.org"), Some("delayed"), "4.2.2"),
            (Some("also-full@example.org"), Some("delayed"), "4.2.2"),
        ]
    );
    assert_eq!(
        recipients[1].diagnostic.as_deref(),
        Some("4.2.2 mailbox over quota=20 (retry timeout not reached)")
    );
}

#[test]
fn a_global_delivery_status_gives_the_utf8_address() {
    let recipients = recipients(read(GLOBAL_DSN.as_bytes()));

    assert_eq!(
        recipients[0].final_recipient.as_deref(),
        Some("josé@exemple.fr")
    );
    assert_eq!(recipients[0].status, "5.1.10");
}

#[test]
fn a_dsn_built_with_lettre_parses() {
    let message = lettre_dsn(
        "bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com",
        "gone@example.org",
        "5.1.1",
    );

    let recipients = recipients(read(&message.formatted()));

    assert_eq!(recipients.len(), 1);
    assert_eq!(
        recipients[0].final_recipient.as_deref(),
        Some("gone@example.org")
    );
    assert_eq!(recipients[0].status, "5.1.1");
    assert_eq!(
        recipients[0].diagnostic.as_deref(),
        Some("550 5.1.1 User unknown")
    );
}

#[test]
fn an_arf_abuse_report_is_a_complaint_with_its_addresses() {
    let report = read(crlf(ARF_COMPLAINT).as_bytes());

    let expected = Complaint {
        feedback_type: "abuse".into(),
        original_rcpt_to: Some("user@example.com".into()),
        original_mail_from: Some(
            "bounce+0193a2b4-6c1d-7e8f-9a0b-1c2d3e4f5a6b@bounces.example.com".into(),
        ),
    };
    assert_eq!(report, Report::Complaint(expected.clone()));
    assert!(expected.is_abuse());
}

#[test]
fn a_feedback_report_of_another_type_gives_its_type_and_is_no_complaint() {
    let Report::Complaint(complaint) = read(ARF_MINIMAL_NOT_SPAM.as_bytes()) else {
        panic!("expected a feedback report");
    };

    assert_eq!(complaint.feedback_type, "not-spam");
    assert_eq!(complaint.original_rcpt_to, None);
    assert!(!complaint.is_abuse());
}

#[test]
fn a_status_that_is_no_rfc_3463_code_is_skipped() {
    for status in ["3.1.1", "5.1", "5.1.1.1", "5.1.1000", "5.a.1", "", "550"] {
        let dsn = DELAYED_DSN
            .replacen("Status: 4.2.2", &format!("Status: {status}"), 1)
            .replacen("Status: 4.2.2", "Status: nonsense", 1);

        assert_eq!(
            read(dsn.as_bytes()),
            Report::Other("no recipient status"),
            "{status}"
        );
    }
}

#[test]
fn a_long_diagnostic_is_cut_at_1000_characters() {
    let long = "é".repeat(3000);
    let dsn = POSTFIX_DSN.replacen(
        "Diagnostic-Code: smtp; 550",
        &format!("Diagnostic-Code: smtp; {long}"),
        1,
    );

    let recipients = recipients(read(dsn.as_bytes()));

    let diagnostic = recipients[0].diagnostic.as_deref().expect("a diagnostic");
    assert_eq!(diagnostic.chars().count(), 1000);
}

#[test]
fn messages_that_are_not_reports_are_other_with_the_reason() {
    let plain = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n";
    let mdn = ARF_MINIMAL_NOT_SPAM.replace("feedback-report;", "disposition-notification;");
    let no_status = POSTFIX_DSN.replace(
        "Content-Type: message/delivery-status",
        "Content-Type: text/plain",
    );
    let no_feedback = ARF_COMPLAINT.replace(
        "Content-Type: message/feedback-report",
        "Content-Type: text/plain",
    );

    assert_eq!(read(plain.as_bytes()), Report::Other("not a report"));
    assert_eq!(
        read(mdn.as_bytes()),
        Report::Other("neither a delivery status nor a feedback report")
    );
    assert_eq!(
        read(no_status.as_bytes()),
        Report::Other("no delivery-status part")
    );
    assert_eq!(
        read(no_feedback.as_bytes()),
        Report::Other("no feedback-report part")
    );
    assert_eq!(read(b""), Report::Other("unparseable"));
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Bytes, or pieces of MIME, in random order.
    fn message(&mut self) -> Vec<u8> {
        const PIECES: [&str; 12] = [
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
            "Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n",
            "Content-Type: message/delivery-status\r\n",
            "Content-Type: message/feedback-report\r\n",
            "Content-Type: message/rfc822\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n--b\r\n",
            "\r\n--b--\r\n",
            "Status: 5.1.1\r\n",
            "Final-Recipient: rfc822;\r\n",
            "\r\n",
            " \t folded\n",
        ];
        let mut out = Vec::new();
        for _ in 0..self.below(40) {
            if self.below(2) == 0 {
                out.extend_from_slice(PIECES[self.below(PIECES.len())].as_bytes());
            } else {
                let len = self.below(64);
                out.extend((0..len).map(|_| self.next() as u8));
            }
        }
        out
    }
}

#[test]
fn no_input_makes_reading_panic() {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let _ = read(&noise.message());
    }

    for sample in [
        POSTFIX_DSN,
        GMAIL_DSN,
        DELAYED_DSN,
        GLOBAL_DSN,
        ARF_COMPLAINT,
    ] {
        let bytes = crlf(sample).into_bytes();
        for end in (0..bytes.len()).step_by(7) {
            let _ = read(&bytes[..end]);
        }
    }

    let mut nested = String::new();
    for depth in 0..2000 {
        nested.push_str(&format!(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b{depth}\"\r\n\r\n--b{depth}\r\n"
        ));
    }
    let _ = read(nested.as_bytes());
    let _ = read(format!("Subject: {}\r\n\r\n", "x".repeat(4 << 20)).as_bytes());
    let _ = read(&[0xFF; 10_000]);
}
