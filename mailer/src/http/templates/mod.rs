//! The template routes, all read from the template catalog (`crate::templates::catalog`):
//!
//! - `GET /templates` (bearer token): every template with its locales and variables;
//! - `POST /templates/{name}/{locale}/render` (bearer token): the subject, text and HTML of
//!   a render with the given `vars`, or with the catalog's samples;
//! - `GET /templates/{name}/{locale}` (open, like `/docs`): an HTML page previewing the
//!   sample render ([`preview`]). It shows only catalog samples, never anyone's data.

pub mod preview;

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use crate::error::MailError;
use crate::templates::{SampleError, Templates};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Locale, Template};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// The routes that need the bearer token.
pub fn protected() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list_templates))
        .route("/templates/{name}/{locale}/render", post(render_template))
}

/// The preview page, open to anyone.
pub fn open() -> Router<AppState> {
    Router::new().route("/templates/{name}/{locale}", get(preview::preview_template))
}

/// One template of `GET /templates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateSummary {
    /// The name a mail request gives as `template`.
    name: String,
    /// When the mail is sent.
    description: String,
    /// The locales it is written in.
    locales: Vec<String>,
    /// The variables a mail request passes in `vars`, each with its sample value.
    vars: Vec<VarSummary>,
    /// The variables filled from the recipient (`name`, `email`), not accepted in `vars`;
    /// their samples are the sample recipient's.
    recipient_vars: Vec<VarSummary>,
}

/// One variable of a template.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VarSummary {
    /// The key.
    name: String,
    /// What it holds.
    description: String,
    /// The value renders use when no `vars` are given, and previews always.
    sample: Value,
    /// True when a mail request may leave it out.
    optional: bool,
}

/// The body of `POST /templates/{name}/{locale}/render`; an empty body means `{}`.
/// Read field by field ([`render_request`]), so that each unknown field is named in `details`.
#[derive(Debug, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// Exactly the template's variables; when absent or null, the catalog's samples.
    vars: Option<Map<String, Value>>,
}

/// A rendered template.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderedTemplate {
    /// The subject line.
    subject: String,
    /// The plain-text body.
    text: String,
    /// The HTML body.
    html: String,
}

/// Every template with its locales and variables, from the template catalog.
#[utoipa::path(get, path = "/templates", tag = "templates",
    responses(
        (status = 200, description = "Every template", body = Vec<TemplateSummary>),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_templates(State(state): State<AppState>) -> Json<Vec<TemplateSummary>> {
    let templates = state.templates.current();
    let catalog = templates.catalog();
    let recipient_vars: Vec<VarSummary> = catalog
        .recipient_vars
        .iter()
        .map(|v| VarSummary {
            name: v.name.clone(),
            description: v.description.clone(),
            sample: catalog.recipient_sample(&v.name),
            optional: false,
        })
        .collect();
    let summaries = catalog
        .templates
        .iter()
        .map(|entry| TemplateSummary {
            name: entry.name.as_str().to_string(),
            description: entry.description.clone(),
            locales: entry.locales.iter().map(|l| l.as_str().into()).collect(),
            vars: entry
                .vars
                .iter()
                .map(|v| VarSummary {
                    name: v.name.clone(),
                    description: v.description.clone(),
                    sample: v.sample.clone(),
                    optional: v.optional,
                })
                .collect(),
            recipient_vars: recipient_vars.clone(),
        })
        .collect();
    Json(summaries)
}

/// Renders a template for the sample recipient, with `vars` or with the catalog's samples.
/// `vars` must hold exactly the template's variables, optional ones excepted: a missing or an
/// unknown one is a 400 whose `details` name it (`vars.<name>`).
#[utoipa::path(post, path = "/templates/{name}/{locale}/render", tag = "templates",
    params(("name" = String, Path, description = "The template"), ("locale" = String, Path, description = "One of the template's locales (BCP 47)")),
    request_body(content = Option<RenderRequest>, content_type = "application/json", description = "Optional: an empty body renders the samples"),
    responses(
        (status = 200, description = "The rendered subject, text and HTML", body = RenderedTemplate),
        (status = 400, description = "Not JSON (`invalid_json`), or a missing, unknown or mistyped variable (`invalid_request`, details per variable)", body = crate::error::ErrorBody),
        (status = 401, description = "No or a bad bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "No such template or locale", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "A body whose content type is not JSON", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn render_template(
    NamedTemplate(templates, template, locale): NamedTemplate,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<RenderedTemplate>, MailError> {
    let request = render_request(body)?;
    let mail = templates
        .render_sample(&template, &locale, request.vars.as_ref())
        .map_err(refused)?;
    Ok(Json(RenderedTemplate {
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
    }))
}

/// The template and locale the path `{name}/{locale}` names in the set in force (kept for
/// the whole request), or 404 naming those that exist. Read from the path before any body, so
/// an unknown template is 404 whatever the body is.
pub struct NamedTemplate(pub Arc<Templates>, pub Template, pub Locale);

impl FromRequestParts<AppState> for NamedTemplate {
    type Rejection = MailError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, MailError> {
        let ApiPath((name, locale)) =
            ApiPath::<(String, String)>::from_request_parts(parts, state).await?;
        let templates = state.templates.current();
        let (template, locale) = find(&templates, &name, &locale)?;
        Ok(Self(templates, template, locale))
    }
}

fn find(templates: &Templates, name: &str, locale: &str) -> Result<(Template, Locale), MailError> {
    let entry = Template::parse(name)
        .ok()
        .and_then(|template| templates.entry(&template));
    let Some(entry) = entry else {
        return Err(MailError::missing(format!(
            "No template is named {name:?}; the templates are {}.",
            templates.catalog().names().join(", ")
        )));
    };
    let template = entry.name.clone();
    let locales = &entry.locales;
    match Locale::parse(locale) {
        Ok(locale) if locales.contains(&locale) => Ok((template, locale)),
        _ => {
            let known: Vec<&str> = locales.iter().map(|l| l.as_str()).collect();
            Err(MailError::missing(format!(
                "The {template} template has no locale {locale:?}; its locales are {}.",
                known.join(", ")
            )))
        }
    }
}

/// The 400 of a render the templates refused, naming the variables at fault in `details`.
fn refused(error: SampleError) -> MailError {
    match error {
        SampleError::Vars(fields) => MailError::InvalidFields(fields),
        // The vars passed the checks but the engine still refused them: say why, against
        // `vars` as a whole, since minijinja names the template line rather than a variable.
        SampleError::Render(e) => {
            MailError::InvalidFields(BTreeMap::from([("vars".to_string(), e.to_string())]))
        }
    }
}

/// A render body read field by field: `vars` is `None` when the body has none, or `null` ones
/// (an empty body reads as `{}`), the object otherwise. The body may hold nothing but `vars`.
fn render_request(mut fields: Map<String, Value>) -> Result<RenderRequest, MailError> {
    let vars = fields.remove("vars");
    if !fields.is_empty() {
        let unknown = fields
            .keys()
            .map(|k| (k.clone(), "is not a field of a render request".to_string()))
            .collect();
        return Err(MailError::InvalidFields(unknown));
    }
    match vars {
        None | Some(Value::Null) => Ok(RenderRequest { vars: None }),
        Some(Value::Object(vars)) => Ok(RenderRequest { vars: Some(vars) }),
        Some(_) => Err(MailError::InvalidFields(BTreeMap::from([(
            "vars".to_string(),
            "must be an object".to_string(),
        )]))),
    }
}
