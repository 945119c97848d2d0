//! Free text that ends up in a mail header or a log line: names, company, functions, and
//! the addresses themselves.

use crate::Invalid;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True for the characters a one-line text field or an address may not hold, by Unicode
/// general category:
/// - Cc, the C0 and C1 controls (CR and LF among them, which would end a mail header early;
///   U+0085, NEL, is one too);
/// - Cf, the format characters: zero-width ones (U+200B, U+200C, U+200D, U+FEFF, the soft
///   hyphen) that make two spellings look alike, and the bidirectional controls (U+202A to
///   U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C) that make text display in another
///   order than it is stored;
/// - Zl and Zp, the line and paragraph separators U+2028 and U+2029.
pub(crate) fn is_forbidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The characters of the Basic Multilingual Plane that [`is_forbidden`] refuses, as the inside
/// of a regular-expression class (`[^…]`) written with `\uXXXX` escapes, which ECMA-262 and
/// Python read alike: the OpenAPI documents' patterns use it, so that a client generating
/// values from them (a fuzzer) never meets a refusal the document does not state. A test
/// below holds it to [`is_forbidden`]. Characters beyond the BMP are left out: without the
/// `u` flag an ECMA-262 class cannot name them.
#[macro_export]
macro_rules! forbidden_class {
    () => {
        r"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    };
}

/// The first character of `value` that [`is_forbidden`], if any.
pub(crate) fn first_forbidden(value: &str) -> Option<char> {
    value.chars().find(|&c| is_forbidden(c))
}

/// Refuses a value of `field` that holds a control, format or line-separator character.
pub fn plain_text(field: &str, value: &str) -> Result<(), Invalid> {
    match first_forbidden(value) {
        None => Ok(()),
        Some(c) => Err(Invalid::new(
            field,
            format!(
                "must not contain control, format or line-separator characters (found U+{:04X})",
                c as u32
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_controls_and_format_characters_are_refused_and_accents_are_not() {
        assert!(plain_text("first_name", "Ada Lovelace-Byron").is_ok());
        assert!(plain_text("first_name", "Élodie Ørsted 李 محمد").is_ok());
        for bad in [
            "Ada\r\nBcc: x@y",
            "A\nB",
            "A\u{0}",
            "A\u{7f}",
            "A\u{80}",
            "A\u{85}",
            "A\u{9f}",
            "A\u{2028}",
            "A\u{2029}",
            "\t",
            // Zero-width.
            "A\u{200B}da",
            "A\u{200C}da",
            "A\u{200D}da",
            "\u{FEFF}Ada",
            "A\u{AD}da",
            // Bidirectional controls.
            "Ada\u{202E}txt.exe",
            "A\u{202A}",
            "\u{2066}Ada\u{2069}",
            "A\u{200E}",
            "A\u{200F}",
            "A\u{061C}",
        ] {
            let error = plain_text("first_name", bad).unwrap_err();
            assert_eq!(error.field, "first_name", "{bad:?}");
            assert!(error.message.contains("(found U+"), "{bad:?}");
        }
        assert!(
            plain_text("last_name", "Ada\u{202E}")
                .unwrap_err()
                .message
                .contains("U+202E")
        );
    }

    #[test]
    fn the_documented_class_is_exactly_the_refused_characters_of_the_bmp() {
        let class = crate::forbidden_class!();
        let mut ranges = Vec::new();
        for part in class.split("\\u").filter(|p| !p.is_empty()) {
            let (code, is_start) = match part.strip_suffix('-') {
                Some(code) => (code, true),
                None => (part, false),
            };
            let c = u32::from_str_radix(code, 16).unwrap();
            match ranges.last_mut() {
                Some((_, end @ None)) => *end = Some(c),
                _ if is_start => ranges.push((c, None)),
                _ => ranges.push((c, Some(c))),
            }
        }
        let listed = |c: u32| ranges.iter().any(|&(a, b)| a <= c && c <= b.unwrap());
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            assert_eq!(listed(c as u32), is_forbidden(c), "U+{:04X}", c as u32);
        }
    }
}
