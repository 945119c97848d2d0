//! Free text that ends up in a mail header or a log line: names, company, functions.

use crate::Invalid;

/// True for the characters a one-line text field may not hold: C0 and C1 controls (CR and LF
/// among them, which would end a mail header early) and the Unicode line and paragraph
/// separators U+2028 and U+2029.
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Refuses a value of `field` that holds a control character or a line separator.
pub fn plain_text(field: &str, value: &str) -> Result<(), Invalid> {
    match value.chars().find(|&c| is_forbidden(c)) {
        None => Ok(()),
        Some(c) => Err(Invalid::new(
            field,
            format!(
                "must not contain control characters or line breaks (found U+{:04X})",
                c as u32
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_are_refused_and_accents_are_not() {
        assert!(plain_text("first_name", "Ada Lovelace-Byron").is_ok());
        assert!(plain_text("first_name", "Élodie Ørsted 李").is_ok());
        for bad in [
            "Ada\r\nBcc: x@y",
            "A\nB",
            "A\u{0}",
            "A\u{7f}",
            "A\u{85}",
            "A\u{2028}",
            "A\u{2029}",
            "\t",
        ] {
            let error = plain_text("first_name", bad).unwrap_err();
            assert_eq!(error.field, "first_name", "{bad:?}");
        }
    }
}
