//! Addresses shown without their local part: `ada@example.com` → `a…@example.com` (the first
//! character, an ellipsis, the domain). The live page shows recipients so to anonymous
//! viewers, and a mail that names an address it is not sent to shows it so.
//!
//! [`mask_email`] masks one address. [`mask_addresses_in`] masks every address found in free
//! text, such as an SMTP server's reply or an operator's reason. It reads each address as a
//! whole, with the syntax of RFC 5322 and RFC 6531 rather than a guess at word edges: a local
//! part is a run of `atext` (which holds `'`, `` ` ``, `{`, `}` and more), dots, non-ASCII
//! characters and quoted strings (`"jane doe"`, `"a@b"`), so nothing of it is left showing
//! beside the mask. Reading too much is harmless (it is masked too); reading too little
//! would show part of an address, so an `@` followed by a domain whose local part the
//! grammar does not take (a comment, brackets) is masked back to the previous space.

/// What replaces a local part after its first character.
const ELLIPSIS: char = '\u{2026}';

/// The longest quoted string read as part of a local part (RFC 5321 allows 64 octets for
/// the whole local part); a quote that stays open longer is an ordinary character. This
/// keeps the scan of a text linear.
const MAX_QUOTED: usize = 256;

/// `ada@example.com` → `a…@example.com`: the first character of the local part (inside its
/// quotes when it is quoted), an ellipsis, `@` and the domain. Without an `@`, the first
/// character and the ellipsis.
pub fn mask_email(address: &str) -> String {
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (address, None),
    };
    let mut masked = String::with_capacity(domain.map_or(0, str::len) + 8);
    if let Some(first) = first_shown(local) {
        masked.push(first);
    }
    masked.push(ELLIPSIS);
    if let Some(domain) = domain {
        masked.push('@');
        masked.push_str(domain);
    }
    masked
}

/// `text` with every address in it masked as [`mask_email`] does, and nothing else changed:
/// `550 <bounce{jane.doe}@example.com>: no such user` → `550 <b…@example.com>: no such user`.
pub fn mask_addresses_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // `text[..copied]` is in `out` already; `at` is where reading goes on.
    let (mut copied, mut at) = (0, 0);
    while let Some(c) = text[at..].chars().next() {
        let starts_word = text[..at].chars().next_back().is_none_or(|p| !is_atext(p));
        if starts_word && (is_atext(c) || c == '"') {
            let local = scan_local_part(text, at);
            if let Some(end) = domain_after(text, local.end) {
                out.push_str(&text[copied..at]);
                out.push_str(&mask_email(&text[at..end]));
                (copied, at) = (end, end);
                continue;
            }
            // No address starts inside the unquoted run just read; a quoted string in it is
            // read again character by character, since it may quote an address.
            let next = local.first_quote.unwrap_or(local.end);
            if next > at {
                at = next;
                continue;
            }
        } else if c == '@'
            && let Some(end) = domain_after(text, at)
        {
            // An `@` and a domain after something the local-part grammar did not take
            // (`jane(home)@example.com`): that whole word is the local part.
            let start = text[copied..at]
                .rfind(char::is_whitespace)
                .map_or(copied, |i| {
                    copied + i + text[copied + i..].chars().next().map_or(1, char::len_utf8)
                });
            if start < at {
                out.push_str(&text[copied..start]);
                out.push_str(&mask_email(&text[start..end]));
                (copied, at) = (end, end);
                continue;
            }
        }
        at += c.len_utf8();
    }
    out.push_str(&text[copied..]);
    out
}

/// The first character of a local part, inside its quotes when it is quoted.
fn first_shown(local: &str) -> Option<char> {
    let mut chars = local.chars();
    match chars.next()? {
        '"' => match chars.next()? {
            '\\' => chars.next(),
            '"' => None,
            c => Some(c),
        },
        c => Some(c),
    }
}

/// A character of an unquoted local part: RFC 5322 `atext`, the dot, and any non-ASCII
/// character that is not a space or a control (RFC 6531).
fn is_atext(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
    } else {
        !c.is_whitespace() && !c.is_control()
    }
}

/// What [`scan_local_part`] read.
struct LocalPart {
    /// Where the local part would end (the byte after it).
    end: usize,
    /// Where its first quoted string starts, if it has one.
    first_quote: Option<usize>,
}

/// Reads a local part starting at `start`: `atext` and closed quoted strings, in any order.
fn scan_local_part(text: &str, start: usize) -> LocalPart {
    let mut part = LocalPart {
        end: start,
        first_quote: None,
    };
    while let Some(c) = text[part.end..].chars().next() {
        if is_atext(c) {
            part.end += c.len_utf8();
        } else if c == '"'
            && let Some(len) = quoted_len(&text[part.end..])
        {
            part.first_quote.get_or_insert(part.end);
            part.end += len;
        } else {
            break;
        }
    }
    part
}

/// The length in bytes of the quoted string `text` starts with (`"` … `"`, where `\` escapes
/// the next character), or none when it does not close within [`MAX_QUOTED`] bytes or on
/// its line.
fn quoted_len(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if i > MAX_QUOTED || c == '\r' || c == '\n' {
            return None;
        }
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// When `text[at..]` is `@` and a domain, where the domain ends: a domain literal
/// (`[192.0.2.1]`) or a run of letters, digits, hyphens and dots (any script), without the
/// full stop of a sentence after it.
fn domain_after(text: &str, at: usize) -> Option<usize> {
    let rest = text[at..].strip_prefix('@')?;
    let start = at + 1;
    if rest.starts_with('[') {
        let close = rest.find(']')?;
        let inside = &rest[1..close];
        let literal = !inside.is_empty()
            && inside.len() <= 64
            && inside
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':'));
        return literal.then_some(start + close + 1);
    }
    let run = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    let domain = rest[..run].trim_end_matches(['.', '-']);
    let named = domain.starts_with(char::is_alphanumeric);
    named.then_some(start + domain.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_address_keeps_its_first_character_and_its_domain() {
        assert_eq!(mask_email("ada@example.com"), "a…@example.com");
        assert_eq!(mask_email("é.x@exemple.fr"), "é…@exemple.fr");
        assert_eq!(mask_email("a@b.c"), "a…@b.c");
        assert_eq!(mask_email("bounce{jane.doe}@example.com"), "b…@example.com");
        assert_eq!(mask_email("\"jane doe\"@example.com"), "j…@example.com");
        assert_eq!(mask_email("\"a@b\"@example.com"), "a…@example.com");
        assert_eq!(mask_email("\"\"@example.com"), "…@example.com");
        assert_eq!(mask_email("no-at-sign"), "n…");
    }

    /// Each address inside a sentence, and what the sentence must become.
    const IN_TEXT: [(&str, &str); 12] = [
        (
            "SMTP: permanent error (550): <Ada@example.com> unknown; bob@example.org.",
            "SMTP: permanent error (550): <A…@example.com> unknown; b…@example.org.",
        ),
        (
            "550 5.1.1 <bounce{jane.doe.secret}@example.com>: Recipient address rejected",
            "550 5.1.1 <b…@example.com>: Recipient address rejected",
        ),
        (
            "550 no mailbox o'brien.secret@example.com here",
            "550 no mailbox o…@example.com here",
        ),
        (
            "user 'jane.secret@example.com' unknown",
            "user '…@example.com' unknown",
        ),
        ("user `jane.secret`@example.com", "user `…@example.com"),
        (
            "550 \"jane secret doe\"@example.com: no such user",
            "550 j…@example.com: no such user",
        ),
        (
            "rejected: \"jane@secret\"@example.com",
            "rejected: j…@example.com",
        ),
        (
            "rejected: \"jane \\\"secret\\\" doe\"@example.com",
            "rejected: j…@example.com",
        ),
        (
            "\"quoted reply: jane.secret@example.com\" said the server",
            "\"quoted reply: j…@example.com\" said the server",
        ),
        (
            "jane.secret(home)@example.com bounced",
            "j…@example.com bounced",
        ),
        (
            "to jösé.secret@exämple.com and 李secret@例子.中国",
            "to j…@exämple.com and 李…@例子.中国",
        ),
        (
            "literal jane.secret@[192.0.2.1].",
            "literal j…@[192.0.2.1].",
        ),
    ];

    #[test]
    fn every_address_in_a_text_is_masked_as_a_whole() {
        for (text, masked) in IN_TEXT {
            let got = mask_addresses_in(text);
            assert_eq!(got, masked, "{text}");
            assert!(!got.contains("secret"), "{text} → {got}");
        }
    }

    #[test]
    fn text_without_an_address_is_left_as_it_is() {
        for text in [
            "try again later (451 4.7.1)",
            "a lone @ sign",
            "@ the start, and at the end @",
            "\"an open quote and no address",
            "",
        ] {
            assert_eq!(mask_addresses_in(text), text);
        }
    }

    #[test]
    fn masking_twice_changes_nothing_more() {
        for (text, masked) in IN_TEXT {
            assert_eq!(mask_addresses_in(masked), masked, "{text}");
        }
    }

    #[test]
    fn a_long_text_of_quotes_and_signs_is_read_in_one_pass() {
        let text = "\"@".repeat(50_000) + "\"x y" + &"a".repeat(100_000);
        let started = std::time::Instant::now();
        let masked = mask_addresses_in(&text);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(masked, text);
    }
}
