//! A template that extends a layout, joined with that layout into one template at load.
//!
//! minijinja resolves `{% extends %}` at every render: it runs the child until the tag,
//! looks the layout up, builds the block table and runs the layout with it. For the mail
//! templates that was about 30 % of a render's instructions (`docs/BENCHMARKS.md`,
//! "Rendering with a layout, and the delivery line"), paid on every mail for a result fixed
//! at load. A child made only of
//! `{% extends "…" %}` and plain top-level blocks is joined instead: each of the layout's
//! blocks is replaced by the child's body of that block (or kept as the layout wrote it), in
//! `{% if true %}` tags that keep both files' whitespace markers where the block tags were.
//!
//! Anything this cannot show to render the same (nested blocks, `super()`, `self`, a block
//! inside a loop, names set inside a block, comments, raw sections, scoped or required
//! blocks) is left to minijinja's inheritance. [`super::Templates::load`] also renders every
//! joined file beside its original with the catalog's samples and keeps the original when
//! the two differ.

/// One `{% … %}` tag in a source: its byte range, its markers and its words.
struct Tag<'a> {
    start: usize,
    end: usize,
    /// `{%`, `{%-` or `{%+`.
    open: &'a str,
    /// `%}`, `-%}` or `+%}`.
    close: &'a str,
    words: Vec<&'a str>,
}

impl Tag<'_> {
    fn keyword(&self) -> &str {
        self.words.first().copied().unwrap_or("")
    }

    /// The tag `{% if true %}` or `{% endif %}` with this tag's whitespace markers.
    fn as_plain(&self, keyword: &str) -> String {
        format!("{} {keyword} {}", self.open, self.close)
    }
}

/// The tags of `source`, or `None` when it holds something the join does not reason about
/// (comments, raw sections, an unclosed tag).
fn tags(source: &str) -> Option<Vec<Tag<'_>>> {
    if source.contains("{#") {
        return None;
    }
    let mut tags = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find("{%") {
        let start = at + found;
        let inner_start = start + 2;
        let close_at = inner_start + source[inner_start..].find("%}")?;
        let end = close_at + 2;
        let mut inner = &source[inner_start..close_at];
        let mut open = &source[start..inner_start];
        if let Some(rest) = inner.strip_prefix(['-', '+']) {
            open = &source[start..inner_start + 1];
            inner = rest;
        }
        let mut close = &source[close_at..end];
        if let Some(rest) = inner.strip_suffix(['-', '+']) {
            close = &source[close_at - 1..end];
            inner = rest;
        }
        let words: Vec<&str> = inner.split_whitespace().collect();
        if matches!(words.first(), Some(&"raw")) {
            return None;
        }
        tags.push(Tag {
            start,
            end,
            open,
            close,
            words,
        });
        at = end;
    }
    Some(tags)
}

fn literal(word: &str) -> Option<&str> {
    word.strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .or_else(|| word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')))
}

/// A block's body: the text between its tags, with the tags themselves.
struct Block<'a> {
    name: &'a str,
    open: Tag<'a>,
    close: Tag<'a>,
    body: &'a str,
}

/// The top-level blocks of `tags` in `source`, or `None` when one of them is not plain: a
/// nested block, a block inside another tag's body, a modifier (`scoped`, `required`), or a
/// body that sets names or reaches the parent (`super()`, `self`).
fn blocks<'a>(source: &'a str, tags: Vec<Tag<'a>>) -> Option<Vec<Block<'a>>> {
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    let mut open: Option<Tag<'a>> = None;
    for tag in tags {
        match (tag.keyword(), &open) {
            ("block", None) if depth == 0 && tag.words.len() == 2 => open = Some(tag),
            ("endblock", Some(_)) if tag.words.len() <= 2 => {
                let start = open.take()?;
                let name = start.words[1];
                if tag.words.get(1).is_some_and(|n| *n != name) {
                    return None;
                }
                let body = &source[start.end..tag.start];
                if body.contains("super(") || body.contains("self.") || body.contains("self[") {
                    return None;
                }
                blocks.push(Block {
                    name,
                    open: start,
                    close: tag,
                    body,
                });
            }
            ("block" | "endblock" | "extends" | "set" | "macro" | "import" | "from", _) => {
                return None;
            }
            (keyword, None) => {
                if opens_body(keyword) {
                    depth += 1;
                } else if keyword.starts_with("end") {
                    depth = depth.checked_sub(1)?;
                }
            }
            (_, Some(_)) => {}
        }
    }
    open.is_none().then_some(blocks)
}

/// Whether a tag with this keyword has an `end…` tag.
fn opens_body(keyword: &str) -> bool {
    matches!(
        keyword,
        "if" | "for" | "macro" | "call" | "filter" | "with" | "autoescape"
    )
}

/// `child` joined with the layout it extends, which `layout_named` gives by name, or `None`
/// when the join cannot be shown to render the same.
pub(crate) fn join<'a>(
    child: &str,
    layout_named: impl FnOnce(&str) -> Option<&'a str>,
) -> Option<String> {
    let child_tags = tags(child)?;
    let extends = child_tags.first()?;
    if extends.keyword() != "extends" || !child[..extends.start].trim().is_empty() {
        return None;
    }
    let layout = match extends.words.as_slice() {
        [_, name] => layout_named(literal(name)?)?,
        _ => return None,
    };
    let after_extends = extends.end;
    let child_blocks = blocks(child, child_tags.into_iter().skip(1).collect())?;
    // Outside its blocks a child that extends prints nothing; only blank text is allowed
    // there, so that nothing it would run is dropped.
    let mut at = after_extends;
    for block in &child_blocks {
        if !child[at..block.open.start].trim().is_empty() {
            return None;
        }
        at = block.close.end;
    }
    if !child[at..].trim().is_empty() {
        return None;
    }
    let layout_tags = tags(layout)?;
    if layout_tags.iter().any(|t| t.keyword() == "extends") {
        return None;
    }
    let layout_blocks = blocks(layout, layout_tags)?;
    if child_blocks
        .iter()
        .any(|c| !layout_blocks.iter().any(|l| l.name == c.name))
    {
        return None;
    }
    let mut joined = String::with_capacity(layout.len() + child.len());
    let mut at = 0;
    for block in &layout_blocks {
        joined.push_str(&layout[at..block.open.start]);
        joined.push_str(&block.open.as_plain("if true"));
        match child_blocks.iter().find(|c| c.name == block.name) {
            Some(own) => {
                joined.push_str(&own.open.as_plain("if true"));
                joined.push_str(own.body);
                joined.push_str(&own.close.as_plain("endif"));
            }
            None => joined.push_str(block.body),
        }
        joined.push_str(&block.close.as_plain("endif"));
        at = block.close.end;
    }
    joined.push_str(&layout[at..]);
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{Environment, context};

    fn both(child: &str, layout: &str) -> (String, String) {
        let mut env = Environment::new();
        env.add_template_owned("layout.html", layout.to_string())
            .unwrap();
        env.add_template_owned("child.html", child.to_string())
            .unwrap();
        let joined = join(child, |name| (name == "layout.html").then_some(layout)).expect("joined");
        env.add_template_owned("joined.html", joined).unwrap();
        let ctx = context! { name => "<Ada>", items => vec![1, 2] };
        let render = |n: &str| env.get_template(n).unwrap().render(&ctx).unwrap();
        (render("child.html"), render("joined.html"))
    }

    #[test]
    fn a_joined_template_renders_as_its_inheritance_does_whitespace_markers_included() {
        let layout = "<p>top {{ name }}</p>\n{%- block body %}default{% endblock %}\n\
                      {% if name %}<i>{{ name }}</i>{% endif %}\n{% block foot -%}\n  \
                      foot\n{%- endblock foot %}\nend\n";
        for child in [
            "{% extends \"layout.html\" %}\n{% block body %}\nHi {{ name }}\n{% endblock %}\n",
            "{% extends 'layout.html' %}{% block body -%}\n  Hi\n{%- endblock body %}",
            "{% extends \"layout.html\" %}\n{% block foot %}{% for i in items %}{{ i }}{% endfor %}{% endblock %}\n{% block body %}x{% endblock %}",
            "{% extends \"layout.html\" %}",
        ] {
            let (inherited, joined) = both(child, layout);
            assert_eq!(inherited, joined, "{child}");
        }
    }

    #[test]
    fn what_the_join_cannot_reason_about_is_left_to_inheritance() {
        let layout = "a{% block body %}{% endblock %}b";
        for child in [
            "{% extends \"layout.html\" %}{% block body %}{{ super() }}{% endblock %}",
            "{% extends \"layout.html\" %}{% block body %}{% set x = 1 %}{{ x }}{% endblock %}",
            "{% extends \"layout.html\" %}{% block body %}{% block inner %}{% endblock %}{% endblock %}",
            "{% extends \"layout.html\" %}{% block body scoped %}x{% endblock %}",
            "{% extends \"layout.html\" %}{# note #}{% block body %}x{% endblock %}",
            "{% extends \"layout.html\" %}printed? {% block body %}x{% endblock %}",
            "{% extends \"layout.html\" %}{% block other %}x{% endblock %}",
            "{% extends name %}{% block body %}x{% endblock %}",
            "{% block body %}x{% endblock %}",
        ] {
            assert!(join(child, |_| Some(layout)).is_none(), "{child}");
        }
        let looped = "{% for i in items %}{% block body %}{% endblock %}{% endfor %}";
        let child = "{% extends \"layout.html\" %}{% block body %}x{% endblock %}";
        assert!(join(child, |_| Some(looped)).is_none());
        let after_text = "text {% extends \"layout.html\" %}{% block body %}x{% endblock %}";
        assert!(join(after_text, |_| Some(layout)).is_none());
    }
}
