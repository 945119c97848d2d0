//! The bodies of `message/delivery-status` and `message/feedback-report` parts: header-syntax
//! fields, in groups separated by blank lines (RFC 3464 §2.1, RFC 5965 §3.1). mail-parser
//! hands these bodies over as opaque bytes, so they are read here.

/// Beyond this many groups the rest of a body is ignored: every mail of this mailer has one
/// recipient, so a report on a thousand is not about one of them, and the cap bounds the memory
/// a hostile body can make this take.
const MAX_GROUPS: usize = 1000;

/// The longest address kept; longer is no address (RFC 5321 allows 254 octets in a path).
const MAX_ADDRESS_LEN: usize = 512;

/// One group of fields, names in lower case, values unfolded and trimmed, in order.
#[derive(Debug, Default)]
pub(super) struct Group {
    fields: Vec<(String, String)>,
}

impl Group {
    /// The first value of the field `name` (lower case).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the group has the field `name` (lower case).
    pub(super) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn push_field(&mut self, line: &str) {
        let Some((name, value)) = line.split_once(':') else {
            return;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return;
        }
        self.fields
            .push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }

    /// A folded line continues the last field with one space in place of the fold.
    fn continue_field(&mut self, line: &str) {
        if let Some((_, value)) = self.fields.last_mut() {
            let more = line.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
        }
    }
}

/// Splits `body` into its groups of fields; CRLF and bare LF both end a line, and lines that
/// are not fields are skipped.
pub(super) fn groups(body: &str) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current = Group::default();
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                groups.push(std::mem::take(&mut current));
                if groups.len() == MAX_GROUPS {
                    return groups;
                }
            }
        } else if line.starts_with([' ', '\t']) {
            current.continue_field(line);
        } else {
            current.push_field(line);
        }
    }
    if !current.fields.is_empty() {
        groups.push(current);
    }
    groups
}

/// The address of an address-typed field (`rfc822; a@b`, `utf-8; …`), without its type,
/// angle brackets or trailing comment.
pub(super) fn address(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, address)| address);
    plain_address(address)
}

/// An address as written in a header (`<a@b>` or `a@b`), without angle brackets.
pub(super) fn plain_address(value: &str) -> Option<String> {
    let token = value.split_whitespace().next()?;
    let token = token.trim_start_matches('<').trim_end_matches('>');
    (!token.is_empty() && token.len() <= MAX_ADDRESS_LEN).then(|| token.to_owned())
}

/// The first word of a value, in lower case (`Action: Failed (comment)` → `failed`).
pub(super) fn keyword(value: &str) -> Option<String> {
    value.split_whitespace().next().map(str::to_ascii_lowercase)
}

/// An RFC 3463 status code, `class.subject.detail` with class 2, 4 or 5, as its first word.
pub(super) fn status(value: &str) -> Option<String> {
    let code = value.split_whitespace().next()?;
    let mut parts = code.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let number =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let valid = matches!(class, "2" | "4" | "5")
        && number(subject)
        && number(detail)
        && parts.next().is_none();
    valid.then(|| code.to_owned())
}

/// The text of a `Diagnostic-Code` after its type (`smtp; 550 …` → `550 …`), at most `max`
/// characters.
pub(super) fn diagnostic(value: &str, max: usize) -> Option<String> {
    let text = value.split_once(';').map_or(value, |(_, text)| text).trim();
    (!text.is_empty()).then(|| text.chars().take(max).collect())
}
