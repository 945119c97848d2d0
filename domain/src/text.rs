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
}
