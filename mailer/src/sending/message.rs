//! Turning a rendered mail into a MIME message with the contract's Message-ID.

use crate::templates::RenderedMail;
use domain::{MailRequestId, Recipient};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// Builds the message: `From` the configured sender, `To` the recipient,
/// `Message-ID: <id@domain>`, and a text + HTML alternative body.
pub fn build_message(
    from: &str,
    domain: &str,
    id: MailRequestId,
    to: &Recipient,
    mail: RenderedMail,
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("the sender address {from:?} cannot be used: {e}"))?;
    let address = to
        .email
        .as_str()
        .parse()
        .map_err(|e| format!("the recipient address cannot be used: {e}"))?;
    let name = (!to.name.trim().is_empty()).then(|| to.name.clone());
    Message::builder()
        .from(from)
        .to(Mailbox::new(name, address))
        .subject(mail.subject)
        .message_id(Some(format!("<{id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        .map_err(|e| format!("the message could not be built: {e}"))
}
