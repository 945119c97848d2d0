//! The preview page `GET /templates/{name}/{locale}`: the sample render of a template in a
//! page that loads nothing, with the HTML body in a sandboxed frame.

use super::{NamedTemplate, refused};
use crate::error::MailError;
use crate::templates::{RenderedMail, Templates};
use axum::http::header;
use axum::response::IntoResponse;
use domain::{Locale, Template};
use minijinja::Environment;
use serde_json::{Value, json};
use std::sync::LazyLock;

/// The preview page of a template in a locale: the subject, the HTML body in a sandboxed
/// frame and the text body, rendered with the catalog's samples.
#[utoipa::path(get, path = "/templates/{name}/{locale}", tag = "templates",
    params(("name" = String, Path, description = "The template"), ("locale" = String, Path, description = "One of the template's locales (BCP 47)")),
    responses(
        (status = 200, description = "The preview page", body = String, content_type = "text/html"),
        (status = 404, description = "No such template or locale", body = crate::error::ErrorBody),
    ))]
pub async fn preview_template(
    NamedTemplate(templates, template, locale): NamedTemplate,
) -> Result<impl IntoResponse, MailError> {
    let mail = templates
        .render_sample(&template, &locale, None)
        .map_err(refused)?;
    let locale = mail.locale.clone();
    let page = preview_page(&templates, &template, &locale, &mail).map_err(|e| {
        tracing::error!(error = %e, "a template preview page could not be rendered");
        MailError::Internal("The preview page could not be rendered.")
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PREVIEW_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    ))
}

/// Nothing is loaded from anywhere: the page's own `<style>` and the mails' inline styles
/// are allowed, nothing else. The srcdoc frame inherits this policy, so a script in a mail
/// body would be blocked even if the frame's sandbox allowed it, and `frame-src 'none'`
/// keeps a link clicked inside the frame from loading another site into it.
const PREVIEW_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     frame-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The preview page's own template, autoescaped by its `.html` name: the mail's HTML body
/// lands in the `srcdoc` attribute with `&`, `<`, `>` and quotes escaped.
static PREVIEW_PAGE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("preview.html", include_str!("../../../static/preview.html"))
        .expect("the embedded preview page parses");
    env
});

fn preview_page(
    templates: &Templates,
    template: &Template,
    locale: &Locale,
    mail: &RenderedMail,
) -> Result<String, minijinja::Error> {
    let catalog = templates.catalog();
    let Some(entry) = templates.entry(template) else {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::TemplateNotFound,
            "the template left the catalog",
        ));
    };
    let mut links = Vec::new();
    for e in &catalog.templates {
        let t = &e.name;
        for l in &e.locales {
            links.push(json!({
                "href": format!("/templates/{t}/{l}"),
                "label": format!("{t} ({l})"),
                "current": t == template && l == locale,
            }));
        }
    }
    let mut vars: Vec<Value> = entry
        .vars
        .iter()
        .map(|v| {
            let source = if v.optional {
                "vars (optional)"
            } else {
                "vars"
            };
            json!({"name": v.name, "sample": v.sample.to_string(), "source": source,
                "description": v.description})
        })
        .collect();
    vars.extend(catalog.recipient_vars.iter().map(|v| {
        json!({"name": v.name, "sample": catalog.recipient_sample(&v.name).to_string(),
            "source": "recipient", "description": v.description})
    }));
    let page = json!({
        "template": template.as_str(),
        "locale": locale.as_str(),
        "description": entry.description,
        "recipient": format!("{} <{}>", catalog.recipient.name, catalog.recipient.email.as_str()),
        "links": links,
        "subject": mail.subject,
        "html": mail.html,
        "text": mail.text,
        "vars": vars,
    });
    PREVIEW_PAGE
        .get_template("preview.html")?
        .render(minijinja::Value::from(minijinja::value::Serde(&page)))
}
