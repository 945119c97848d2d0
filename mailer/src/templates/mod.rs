//! The mail texts: one subject, one text body and one HTML body per template and locale,
//! embedded at compile time from `mailer/templates/` and rendered with minijinja, and the
//! [`catalog`] that documents each template's variables and sample values.
//!
//! Undefined variables are errors (strict mode), so a missing variable fails at render
//! instead of leaving a hole in a mail. HTML bodies are autoescaped by their `.html`
//! extension; text bodies and subjects are not.

pub mod catalog;

use catalog::{Catalog, TemplateEntry};
use domain::{Locale, Recipient, Template};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Map;
use std::collections::BTreeMap;

/// The variables [`Templates::render`] fills from the recipient.
pub const RECIPIENT_VARS: [&str; 2] = ["name", "email"];

/// The three files of a template in one locale, by extension.
pub const TEMPLATE_PARTS: [&str; 3] = ["subject", "txt", "html"];

const CATALOG: &str = include_str!("../../templates/catalog.json");

/// The name a template file is loaded under: `welcome.fr.html`.
pub fn template_file(template: Template, locale: Locale, part: &str) -> String {
    format!("{}.{}.{part}", template.as_str(), locale.as_str())
}

/// A mail ready to be handed to SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Why a mail could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("the {template} template in {locale} could not be rendered: {source}")]
pub struct RenderError {
    template: Template,
    locale: Locale,
    source: minijinja::Error,
}

macro_rules! embed {
    ($env:ident, $($name:literal),* $(,)?) => {
        $(
            $env.add_template(concat!($name, ".subject"), include_str!(concat!("../../templates/", $name, ".subject")))
                .expect("embedded subject templates parse");
            $env.add_template(concat!($name, ".txt"), include_str!(concat!("../../templates/", $name, ".txt")))
                .expect("embedded text templates parse");
            $env.add_template(concat!($name, ".html"), include_str!(concat!("../../templates/", $name, ".html")))
                .expect("embedded HTML templates parse");
        )*
    };
}

/// Why a sample render was refused.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Some `vars` are missing, unknown or of the wrong type: each `vars.<name>` with one
    /// sentence.
    #[error("the vars do not fit the template")]
    Vars(BTreeMap<String, String>),
    /// The template engine refused the values.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Every template of every locale, compiled once, with their catalog.
pub struct Templates {
    env: Environment<'static>,
    catalog: Catalog,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Loads the embedded templates and their catalog, and checks that the two agree
    /// ([`Catalog::check`]). Both are checked by the crate's tests, so a parse error or a
    /// disagreement here is a build defect, not bad input: it panics, naming every defect.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        embed!(
            env,
            "welcome.en",
            "welcome.fr",
            "account_updated.en",
            "account_updated.fr",
            "account_deleted.en",
            "account_deleted.fr",
            "password_reset.en",
            "password_reset.fr",
            "email_verification.en",
            "email_verification.fr",
            "email_changed.en",
            "email_changed.fr",
            "password_changed.en",
            "password_changed.fr",
        );
        let catalog = Catalog::parse(CATALOG)
            .and_then(|catalog| catalog.check(&env).map(|()| catalog))
            .unwrap_or_else(|defects| panic!("{defects}"));
        Self { env, catalog }
    }

    /// The catalog, checked against the templates.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog entry of `template`.
    pub fn entry(&self, template: Template) -> &TemplateEntry {
        self.catalog
            .entry(template)
            .expect("the catalog check found an entry for every template")
    }

    /// Renders `template` in `locale` for the catalog's sample recipient, with `vars`, or with
    /// the catalog's sample values when `vars` is `None`. Given `vars` must hold exactly the
    /// template's variables (optional ones may be left out), each of the type a mail request
    /// needs.
    pub fn render_sample(
        &self,
        template: Template,
        locale: Locale,
        vars: Option<&Map<String, serde_json::Value>>,
    ) -> Result<RenderedMail, SampleError> {
        let entry = self.entry(template);
        let samples;
        let vars = match vars {
            Some(vars) => {
                entry.check_vars(vars).map_err(SampleError::Vars)?;
                vars
            }
            None => {
                samples = entry.samples();
                &samples
            }
        };
        Ok(self.render(template, locale, &self.catalog.recipient, vars)?)
    }

    /// Renders `template` in `locale` for `to`, with `vars` plus `name` (the recipient's
    /// name, or their address when the name is empty) and `email`.
    pub fn render(
        &self,
        template: Template,
        locale: Locale,
        to: &Recipient,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<RenderedMail, RenderError> {
        let mut context = vars.clone();
        let name = if to.name.trim().is_empty() {
            to.email.as_str().to_string()
        } else {
            to.name.clone()
        };
        context.insert("name".into(), name.into());
        context.insert("email".into(), to.email.as_str().into());
        let ctx = Value::from(minijinja::value::Serde(&context));
        let render = |ext: &str| {
            let name = template_file(template, locale, ext);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|source| RenderError {
                    template,
                    locale,
                    source,
                })
        };
        Ok(RenderedMail {
            // A subject is one line: a newline in a variable must not start a new header.
            subject: render("subject")?
                .replace(['\r', '\n'], " ")
                .trim()
                .to_string(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}
