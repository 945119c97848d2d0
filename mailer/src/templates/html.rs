//! The well-formedness check of an HTML template file, on html5ever's tokenizer.
//!
//! A browser's parser never fails: it repairs an unclosed `<strong>` by stretching it to the
//! end of the mail. So the check is stricter than HTML itself: besides the tokenizer's own
//! parse errors, every element but the void ones (`<br>`, `<img>`…) must be closed, in order,
//! in the file that opens it. Template tags (`{{ … }}`, `{% … %}`) are plain text to the
//! tokenizer, so a layout and the blocks of a template that extends it are each checked as
//! they are written, and a defect is reported at the line of the file that holds it.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use std::cell::RefCell;

/// Elements that have no end tag.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param",
];

#[derive(Default)]
struct Checker {
    open: RefCell<Vec<(String, u64)>>,
    first_error: RefCell<Option<(u64, String)>>,
}

impl Checker {
    fn fail(&self, line: u64, message: String) {
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some((line, message));
        }
    }
}

impl TokenSink for Checker {
    type Handle = ();

    fn process_token(&self, token: Token, line: u64) -> TokenSinkResult<()> {
        match token {
            Token::ParseError(why) => self.fail(line, format!("the HTML does not parse: {why}")),
            Token::TagToken(tag) => {
                let name = tag.name.to_string();
                match tag.kind {
                    TagKind::StartTag if VOID.contains(&name.as_str()) || tag.self_closing => {}
                    TagKind::StartTag => {
                        self.open.borrow_mut().push((name.clone(), line));
                        match name.as_str() {
                            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                                return TokenSinkResult::RawData(RawKind::Rawtext);
                            }
                            "title" | "textarea" => {
                                return TokenSinkResult::RawData(RawKind::Rcdata);
                            }
                            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
                            _ => {}
                        }
                    }
                    TagKind::EndTag => {
                        let mut open = self.open.borrow_mut();
                        match open.last() {
                            Some((top, _)) if *top == name => {
                                open.pop();
                            }
                            Some((top, opened)) => self.fail(
                                line,
                                format!("</{name}> closes <{top}>, which was opened on line {opened} and is still open"),
                            ),
                            None => self.fail(line, format!("</{name}> closes no open element")),
                        }
                    }
                }
            }
            Token::EOFToken => {
                if let Some((name, opened)) = self.open.borrow().last() {
                    self.fail(*opened, format!("<{name}> is never closed"));
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Checks one HTML file; a defect comes back as its line and one sentence.
pub(super) fn check(html: &str) -> Result<(), (usize, String)> {
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(
        Checker::default(),
        TokenizerOpts {
            exact_errors: true,
            ..TokenizerOpts::default()
        },
    );
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    match tokenizer.sink.first_error.take() {
        Some((line, message)) => Err((usize::try_from(line).unwrap_or(usize::MAX), message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn balanced_html_with_template_tags_passes() {
        let html = "<!doctype html>\n<html lang=\"{{ locale }}\"><body>\n{% block body %}{% endblock %}\n<p>a<br>b<img src=\"x\" alt=\"\"></p>\n<style>p > a { color: red }</style>\n</body></html>\n";
        assert_eq!(check(html), Ok(()));
    }

    #[test]
    fn an_unclosed_element_is_named_at_the_line_it_opens() {
        let html = "<p>Hello\n<strong>you</p>\n";
        let (line, why) = check(html).unwrap_err();
        assert_eq!(line, 2, "{why}");
        assert!(why.contains("</p> closes <strong>"), "{why}");
        let (line, why) = check("<div>\n<p>a</p>\n").unwrap_err();
        assert_eq!((line, why.as_str()), (1, "<div> is never closed"));
    }

    #[test]
    fn a_tokenizer_error_is_reported_at_its_line() {
        let (line, why) = check("<p>\n<a href=\"x\"\"y\">z</a></p>").unwrap_err();
        assert_eq!(line, 2, "{why}");
        assert!(why.contains("does not parse"), "{why}");
    }
}
