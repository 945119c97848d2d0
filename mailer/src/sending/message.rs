//! Turning a rendered mail into a MIME message with the contract's Message-ID.

use super::dkim::DkimSigner;
use crate::templates::RenderedMail;
use domain::{Locale, MailRequestId, Recipient, Template};
use lettre::Message;
use lettre::address::{Address, Envelope};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

/// `X-Facteur-Template: welcome`: lets mail filters and tests sort mails by kind without
/// parsing localised subjects.
#[derive(Debug, Clone)]
struct FacteurTemplate(Template);

impl Header for FacteurTemplate {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Facteur-Template")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(Template::parse(s.trim())?))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.as_str().to_string())
    }
}

/// `Content-Language: de` (RFC 3282): the language the mail was written in, which may be
/// the fallback rather than the one asked for; readers and filters see it without guessing.
#[derive(Debug, Clone)]
struct ContentLanguage(Locale);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(Locale::parse(s.trim())?))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.as_str().to_string())
    }
}

/// What every message of this mailer has in common: its sender, the Message-ID domain, and
/// the DKIM key when mails are signed.
pub struct Letterhead {
    /// The `From` header, parsed once at start.
    pub from: Mailbox,
    /// The Message-ID domain.
    pub domain: String,
    /// Signs every message when `mailer.dkim` is set.
    pub dkim: Option<DkimSigner>,
    /// With `mailer.bounces`, the domain of every envelope sender `bounce+{id}@{domain}`
    /// (VERP): a report sent back names the delivery in its address.
    pub bounce_domain: Option<String>,
}

/// Builds the message: `From` the configured sender, `To` the recipient,
/// `Message-ID: <id@domain>`, `X-Facteur-Template`, `Content-Language`, and a text + HTML
/// alternative body; signed when `letterhead.dkim` is set.
pub fn build_message(
    letterhead: &Letterhead,
    id: MailRequestId,
    template: &Template,
    to: &Recipient,
    mail: RenderedMail,
) -> Result<Message, String> {
    let Letterhead {
        from,
        domain,
        dkim,
        bounce_domain,
    } = letterhead;
    let address: Address = to
        .email
        .as_str()
        .parse()
        .map_err(|e| format!("the recipient address cannot be used: {e}"))?;
    // Given, the envelope is not derived by parsing the `From` and `To` headers back.
    let sender = match bounce_domain {
        Some(bounces) => format!("bounce+{id}@{bounces}")
            .parse()
            .map_err(|e| format!("the bounce address cannot be used: {e}"))?,
        None => from.email.clone(),
    };
    let envelope = Envelope::new(Some(sender), vec![address.clone()])
        .map_err(|e| format!("the envelope could not be built: {e}"))?;
    let name = (!to.name.trim().is_empty()).then(|| to.name.clone());
    let builder = Message::builder()
        .envelope(envelope)
        .from(from.clone())
        .to(Mailbox::new(name, address))
        .subject(mail.subject)
        .message_id(Some(format!("<{id}@{domain}>")))
        .header(FacteurTemplate(template.clone()))
        .header(ContentLanguage(mail.locale.clone()));
    let body = MultiPart::alternative_plain_html(mail.text, mail.html);
    match dkim {
        None => builder.multipart(body),
        Some(signer) => signer.build_signed(builder, body),
    }
    .map_err(|e| format!("the message could not be built: {e}"))
}
