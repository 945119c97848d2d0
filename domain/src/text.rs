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
    // Most text is ASCII, whose only such characters are its controls: the table search
    // below costs about 1 % of a mail's CPU when every character takes it.
    if c.is_ascii() {
        return c.is_ascii_control();
    }
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
/// below holds it to [`is_forbidden`]. Characters beyond the BMP are not in it: without the
/// `u` flag an ECMA-262 class cannot name them ([`forbidden_beyond_bmp`] does).
#[macro_export]
macro_rules! forbidden_class {
    () => {
        r"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    };
}

/// The characters beyond the Basic Multilingual Plane that [`is_forbidden`] refuses, as a
/// lookahead that refuses a value holding any of them, for the same patterns as
/// [`forbidden_class`]. A class cannot name them in both dialects: ECMA-262 without the `u`
/// flag reads them as surrogate pairs, Python as code points. The characters themselves, as
/// alternatives, read the same in both. A test below holds the list to [`is_forbidden`].
#[macro_export]
macro_rules! forbidden_beyond_bmp {
    () => {
        concat!(
            "(?!.*(?:",
            "\u{110BD}|\u{110CD}|\u{13430}|\u{13431}|\u{13432}|\u{13433}|\u{13434}|\u{13435}|",
            "\u{13436}|\u{13437}|\u{13438}|\u{13439}|\u{1343A}|\u{1343B}|\u{1343C}|\u{1343D}|",
            "\u{1343E}|\u{1343F}|\u{1BCA0}|\u{1BCA1}|\u{1BCA2}|\u{1BCA3}|\u{1D173}|\u{1D174}|",
            "\u{1D175}|\u{1D176}|\u{1D177}|\u{1D178}|\u{1D179}|\u{1D17A}|\u{E0001}|\u{E0020}|",
            "\u{E0021}|\u{E0022}|\u{E0023}|\u{E0024}|\u{E0025}|\u{E0026}|\u{E0027}|\u{E0028}|",
            "\u{E0029}|\u{E002A}|\u{E002B}|\u{E002C}|\u{E002D}|\u{E002E}|\u{E002F}|\u{E0030}|",
            "\u{E0031}|\u{E0032}|\u{E0033}|\u{E0034}|\u{E0035}|\u{E0036}|\u{E0037}|\u{E0038}|",
            "\u{E0039}|\u{E003A}|\u{E003B}|\u{E003C}|\u{E003D}|\u{E003E}|\u{E003F}|\u{E0040}|",
            "\u{E0041}|\u{E0042}|\u{E0043}|\u{E0044}|\u{E0045}|\u{E0046}|\u{E0047}|\u{E0048}|",
            "\u{E0049}|\u{E004A}|\u{E004B}|\u{E004C}|\u{E004D}|\u{E004E}|\u{E004F}|\u{E0050}|",
            "\u{E0051}|\u{E0052}|\u{E0053}|\u{E0054}|\u{E0055}|\u{E0056}|\u{E0057}|\u{E0058}|",
            "\u{E0059}|\u{E005A}|\u{E005B}|\u{E005C}|\u{E005D}|\u{E005E}|\u{E005F}|\u{E0060}|",
            "\u{E0061}|\u{E0062}|\u{E0063}|\u{E0064}|\u{E0065}|\u{E0066}|\u{E0067}|\u{E0068}|",
            "\u{E0069}|\u{E006A}|\u{E006B}|\u{E006C}|\u{E006D}|\u{E006E}|\u{E006F}|\u{E0070}|",
            "\u{E0071}|\u{E0072}|\u{E0073}|\u{E0074}|\u{E0075}|\u{E0076}|\u{E0077}|\u{E0078}|",
            "\u{E0079}|\u{E007A}|\u{E007B}|\u{E007C}|\u{E007D}|\u{E007E}|\u{E007F}",
            "))"
        )
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

    #[test]
    fn the_documented_lookahead_is_exactly_the_refused_characters_beyond_the_bmp() {
        let lookahead = crate::forbidden_beyond_bmp!();
        let listed: Vec<char> = lookahead
            .strip_prefix("(?!.*(?:")
            .and_then(|l| l.strip_suffix("))"))
            .unwrap()
            .split('|')
            .map(|alt| {
                let mut chars = alt.chars();
                let c = chars.next().unwrap();
                assert!(
                    chars.next().is_none(),
                    "one character per alternative: {alt:?}"
                );
                c
            })
            .collect();
        for c in (0x1_0000..=0x10_FFFF_u32).filter_map(char::from_u32) {
            assert_eq!(listed.contains(&c), is_forbidden(c), "U+{:04X}", c as u32);
        }
    }
}
