//! The mail texts: one subject, one text body and one HTML body per template and locale,
//! embedded at compile time from `mailer/templates/` and rendered with minijinja.
//!
//! Undefined variables are errors (strict mode), so a missing variable fails at render
//! instead of leaving a hole in a mail. HTML bodies are autoescaped by their `.html`
//! extension; text bodies and subjects are not.

use domain::{Locale, Recipient, Template};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Map;

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
            $env.add_template(concat!($name, ".subject"), include_str!(concat!("../templates/", $name, ".subject")))
                .expect("embedded subject templates parse");
            $env.add_template(concat!($name, ".txt"), include_str!(concat!("../templates/", $name, ".txt")))
                .expect("embedded text templates parse");
            $env.add_template(concat!($name, ".html"), include_str!(concat!("../templates/", $name, ".html")))
                .expect("embedded HTML templates parse");
        )*
    };
}

/// Every template of every locale, compiled once.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Loads the embedded templates. They are checked by the crate's tests, so a parse
    /// error here is a build defect, not bad input.
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
        );
        Self { env }
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
            let name = format!("{}.{}.{ext}", template.as_str(), locale.as_str());
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
