//! The mail texts: one subject, one text body and one HTML body per template and locale,
//! rendered with minijinja, and the [`catalog`] that documents each template's variables and
//! sample values.
//!
//! The built-in set (`mailer/templates/`) is embedded at compile time; `mailer.templates_dir`
//! names a folder laid out the same way whose files override the built-in files of the same
//! name and whose `catalog.json` adds templates (or replaces a built-in's entry). A set is
//! loaded, compiled and checked as a whole ([`Templates::load`]): every template × locale is
//! rendered with its samples before the set is used, so a mail never meets a broken file.
//! [`live::LiveTemplates`] holds the set in force and swaps in a new one at each valid reload.
//!
//! Undefined variables are errors (strict mode), so a missing variable fails at render
//! instead of leaving a hole in a mail. HTML bodies are autoescaped by their `.html`
//! extension; text bodies and subjects are not. Every template also gets `brand`
//! (`mailer.brand`) and `locale` (the tag it is rendered in), and may extend the shared
//! layouts `layout.html` and `layout.txt`.

pub mod catalog;
mod html;
mod joined;
pub mod live;

use catalog::{Catalog, CatalogFile, TemplateEntry};
use domain::config::BrandConfig;
use domain::{Invalid, Locale, Recipient, Template};
use minijinja::value::{Enumerator, Object};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Map;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The variables [`Templates::render`] fills from the recipient.
pub const RECIPIENT_VARS: [&str; 2] = ["name", "email"];

/// The variables every template gets from the mailer itself.
pub const PROVIDED_VARS: [&str; 2] = ["brand", "locale"];

/// The three files of a template in one locale, by extension.
pub const TEMPLATE_PARTS: [&str; 3] = ["subject", "txt", "html"];

/// The shared layouts templates may extend.
pub const LAYOUTS: [&str; 2] = ["layout.html", "layout.txt"];

const CATALOG: &str = include_str!("../../templates/catalog.json");

/// Where the built-in files are shown to come from in error messages.
const BUILT_IN: &str = "built-in templates";

/// The name a template file is loaded under: `welcome.fr.html`.
pub fn template_file(template: &Template, locale: &Locale, part: &str) -> String {
    format!("{}.{}.{part}", template.as_str(), locale.as_str())
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every built-in file but the catalog, by name.
const EMBEDDED: &[(&str, &str)] = embedded!(
    "layout.html",
    "layout.txt",
    "welcome.en.subject",
    "welcome.en.txt",
    "welcome.en.html",
    "welcome.fr.subject",
    "welcome.fr.txt",
    "welcome.fr.html",
    "account_updated.en.subject",
    "account_updated.en.txt",
    "account_updated.en.html",
    "account_updated.fr.subject",
    "account_updated.fr.txt",
    "account_updated.fr.html",
    "account_deleted.en.subject",
    "account_deleted.en.txt",
    "account_deleted.en.html",
    "account_deleted.fr.subject",
    "account_deleted.fr.txt",
    "account_deleted.fr.html",
    "password_reset.en.subject",
    "password_reset.en.txt",
    "password_reset.en.html",
    "password_reset.fr.subject",
    "password_reset.fr.txt",
    "password_reset.fr.html",
    "email_verification.en.subject",
    "email_verification.en.txt",
    "email_verification.en.html",
    "email_verification.fr.subject",
    "email_verification.fr.txt",
    "email_verification.fr.html",
    "email_changed.en.subject",
    "email_changed.en.txt",
    "email_changed.en.html",
    "email_changed.fr.subject",
    "email_changed.fr.txt",
    "email_changed.fr.html",
    "password_changed.en.subject",
    "password_changed.en.txt",
    "password_changed.en.html",
    "password_changed.fr.subject",
    "password_changed.fr.txt",
    "password_changed.fr.html",
);

/// A mail ready to be handed to SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The locale it was written in: the request's, or the fallback when the template lacks it.
    pub locale: Locale,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Why a mail could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The loaded set has no such template (a folder template removed since the mail was
    /// accepted).
    #[error("the loaded templates have no {0} template")]
    Unknown(Template),
    /// The engine refused the values.
    #[error("the {template} template in {locale} could not be rendered: {source}")]
    Engine {
        /// The template.
        template: Template,
        /// The locale it was rendered in.
        locale: Locale,
        /// The engine's error.
        source: minijinja::Error,
    },
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

/// Why a set of templates was refused: the file, the line when one is known, and what is
/// wrong, printed as one line (`templates/order_shipped.de.html:7: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file, as the operator knows it (a path in `templates_dir`, or a built-in name).
    pub file: String,
    /// The line in that file, counted from 1.
    pub line: Option<usize>,
    /// One sentence.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// What a set of templates is loaded from: the built-ins, the folder that overrides and
/// extends them, the fallback locale and the brand.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    /// `mailer.templates_dir`.
    pub dir: Option<PathBuf>,
    /// `mailer.default_locale`.
    pub default_locale: Locale,
    /// `mailer.brand`.
    pub brand: BrandConfig,
}

impl Default for TemplateSource {
    fn default() -> Self {
        Self {
            dir: None,
            default_locale: Locale::FR,
            brand: BrandConfig::default(),
        }
    }
}

impl TemplateSource {
    /// The source the mailer's configuration names.
    pub fn of(config: &domain::config::MailerConfig) -> Self {
        Self {
            dir: config.templates_dir.clone(),
            default_locale: config.default_locale.clone(),
            brand: config.brand.clone(),
        }
    }
}

/// One file of a set: where it came from and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    label: String,
    text: String,
}

/// Every template of every locale, compiled once, with their catalog.
pub struct Templates {
    /// The files as written: checks and error messages, whose lines are the files' lines.
    env: Environment<'static>,
    /// The same files, with each template that extends a layout joined with it where that
    /// renders the same text (`joined`): what mails are rendered with.
    rendering: Environment<'static>,
    catalog: Catalog,
    default_locale: Locale,
    brand: Value,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.catalog.templates.len())
            .finish()
    }
}

impl Templates {
    /// The built-in set with the default brand. The built-ins are checked by the crate's
    /// tests, so a defect here is a build defect: it panics, naming it.
    pub fn new() -> Self {
        Self::load(&TemplateSource::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads, compiles and checks the built-in files, then `source.dir` over them. Refuses
    /// the set, naming the first defect's file and line: a file that cannot be read or
    /// parsed, a file of no catalog template or locale, a missing part, a variable used but
    /// not in the catalog or listed but unused, a sample render that fails, an HTML part that
    /// is not well-formed, a built-in mail or locale missing, a template without
    /// `default_locale`.
    pub fn load(source: &TemplateSource) -> Result<Self, LoadError> {
        let mut files: BTreeMap<String, SourceFile> = EMBEDDED
            .iter()
            .map(|(name, text)| {
                (
                    (*name).to_string(),
                    SourceFile {
                        label: format!("{BUILT_IN}/{name}"),
                        text: (*text).to_string(),
                    },
                )
            })
            .collect();
        let built_in = CatalogFile::parse(CATALOG, &format!("{BUILT_IN}/catalog.json"))?;
        let mut own = None;
        if let Some(dir) = &source.dir {
            own = read_dir(dir, &mut files)?;
        }
        let catalog = Catalog::merge(built_in, own)?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, file) in &files {
            check_name(name, file, &catalog)?;
            env.add_template_owned(name.clone(), file.text.clone())
                .map_err(|e| engine_error(&e, &files, file))?;
            if name.ends_with(".html") {
                html::check(&file.text).map_err(|(line, message)| LoadError {
                    file: file.label.clone(),
                    line: Some(line),
                    message,
                })?;
            }
        }
        let brand = Value::from(minijinja::value::Serde(&source.brand));
        let mut templates = Self {
            rendering: env.clone(),
            env,
            catalog,
            default_locale: source.default_locale.clone(),
            brand,
        };
        templates.check(&files)?;
        templates.join_layouts(&files);
        Ok(templates)
    }

    /// Replaces in `rendering` each template that extends a layout by its join with that
    /// layout, and keeps the join only where every locale renders the catalog's samples to
    /// the same text both ways.
    fn join_layouts(&mut self, files: &BTreeMap<String, SourceFile>) {
        let mut joined = BTreeSet::new();
        for (name, file) in files {
            let layout_named = |name: &str| files.get(name).map(|l| l.text.as_str());
            if let Some(text) = joined::join(&file.text, layout_named)
                && self
                    .rendering
                    .add_template_owned(name.clone(), text)
                    .is_ok()
            {
                joined.insert(name.clone());
            }
        }
        for entry in &self.catalog.templates {
            let samples = entry.samples();
            for locale in &entry.locales {
                for part in TEMPLATE_PARTS {
                    let name = template_file(&entry.name, locale, part);
                    if !joined.contains(&name) {
                        continue;
                    }
                    let ctx = self.context(locale, &self.catalog.recipient, &samples);
                    let render = |env: &Environment<'static>| {
                        env.get_template(&name).and_then(|t| t.render(ctx.clone()))
                    };
                    let same = matches!(
                        (render(&self.env), render(&self.rendering)),
                        (Ok(a), Ok(b)) if a == b
                    );
                    if !same && let Some(file) = files.get(&name) {
                        tracing::debug!(file = %file.label, "rendered through its layout");
                        let _ = self
                            .rendering
                            .add_template_owned(name.clone(), file.text.clone());
                    }
                }
            }
        }
    }

    /// Checks every entry × locale: its parts exist, use only its variables and use them all,
    /// and render with the samples.
    fn check(&self, files: &BTreeMap<String, SourceFile>) -> Result<(), LoadError> {
        let provided: BTreeSet<&str> = RECIPIENT_VARS.into_iter().chain(PROVIDED_VARS).collect();
        for layout in LAYOUTS {
            if let Some(file) = files.get(layout) {
                let compiled = self
                    .env
                    .get_template(layout)
                    .map_err(|e| engine_error(&e, files, file))?;
                for used in compiled.undeclared_variables(false) {
                    if !provided.contains(used.as_str()) {
                        return Err(unknown_var(
                            file,
                            &used,
                            "layouts get only name, email, brand and locale",
                        ));
                    }
                }
            }
        }
        for entry in &self.catalog.templates {
            let at_entry = |message: String| LoadError {
                file: entry.origin.clone(),
                line: entry.line,
                message,
            };
            if !entry.locales.contains(&self.default_locale) {
                return Err(at_entry(format!(
                    "the {} template has no {} files, and mailer.default_locale is {}",
                    entry.name, self.default_locale, self.default_locale
                )));
            }
            let names: BTreeSet<&str> = entry.vars.iter().map(|v| v.name.as_str()).collect();
            for locale in &entry.locales {
                let mut used_here = BTreeSet::new();
                for part in TEMPLATE_PARTS {
                    let name = template_file(&entry.name, locale, part);
                    let Some(file) = files.get(&name) else {
                        return Err(at_entry(format!(
                            "the {} template lists the locale {locale}, but {name} is missing",
                            entry.name
                        )));
                    };
                    let compiled = self
                        .env
                        .get_template(&name)
                        .map_err(|e| engine_error(&e, files, file))?;
                    for used in compiled.undeclared_variables(false) {
                        if !names.contains(used.as_str()) && !provided.contains(used.as_str()) {
                            return Err(unknown_var(
                                file,
                                &used,
                                &format!("the catalog does not list it for {}", entry.name),
                            ));
                        }
                        used_here.insert(used);
                    }
                }
                if let Some(unused) = entry.vars.iter().find(|v| !used_here.contains(&v.name)) {
                    return Err(LoadError {
                        file: entry.origin.clone(),
                        line: unused.line.or(entry.line),
                        message: format!(
                            "the catalog lists the variable {} for {}, but no {locale} file of it uses it",
                            unused.name, entry.name
                        ),
                    });
                }
                let samples = entry.samples();
                self.render_parts(&entry.name, locale, &self.catalog.recipient, &samples)
                    .map_err(|e| match &e {
                        RenderError::Engine { source, .. } => {
                            match source.name().and_then(|n| files.get(n)) {
                                Some(file) => engine_error(source, files, file),
                                None => at_entry(e.to_string()),
                            }
                        }
                        RenderError::Unknown(_) => at_entry(e.to_string()),
                    })?;
            }
        }
        Ok(())
    }

    /// The catalog, checked against the templates.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The mail request's variants of the templates outside the built-in set, for the
    /// AsyncAPI document.
    pub fn request_variants(&self) -> Vec<serde_json::Value> {
        self.catalog
            .templates
            .iter()
            .filter(|e| !e.name.is_built_in())
            .map(|e| {
                let vars: Vec<(String, serde_json::Value)> = e
                    .vars
                    .iter()
                    .map(|v| (v.name.clone(), v.sample.clone()))
                    .collect();
                let required: Vec<String> = e
                    .vars
                    .iter()
                    .filter(|v| !v.optional)
                    .map(|v| v.name.clone())
                    .collect();
                domain::schema::template_variant(e.name.as_str(), &vars, &required)
            })
            .collect()
    }

    /// The catalog entry of `template`, if the set has one.
    pub fn entry(&self, template: &Template) -> Option<&TemplateEntry> {
        self.catalog.entry(template)
    }

    /// The locale `template` is written in for a request in `locale`: the same tag, else the
    /// first of its locales in the same language (`de` for `de-CH`), else `default_locale`.
    pub fn locale_for(&self, template: &Template, locale: &Locale) -> Option<Locale> {
        let entry = self.entry(template)?;
        if entry.locales.contains(locale) {
            return Some(locale.clone());
        }
        Some(
            entry
                .locales
                .iter()
                .find(|l| l.language() == locale.language())
                .unwrap_or(&self.default_locale)
                .clone(),
        )
    }

    /// Checks a mail request against the set: its template must be in the catalog and its
    /// `vars` must fit the entry. Answers the locale the mail will be written in.
    pub fn admit(
        &self,
        template: &Template,
        locale: &Locale,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<Locale, Invalid> {
        let Some(entry) = self.entry(template) else {
            return Err(Invalid::new(
                "template",
                format!(
                    "unknown template {:?}: expected one of {}",
                    template.as_str(),
                    self.catalog.names().join(", ")
                ),
            ));
        };
        entry.check_request_vars(vars)?;
        Ok(self
            .locale_for(template, locale)
            .unwrap_or_else(|| self.default_locale.clone()))
    }

    /// Renders `template` in `locale` for the catalog's sample recipient, with `vars`, or with
    /// the catalog's sample values when `vars` is `None`. Given `vars` must hold exactly the
    /// template's variables (optional ones may be left out), each of the type a mail request
    /// needs.
    pub fn render_sample(
        &self,
        template: &Template,
        locale: &Locale,
        vars: Option<&Map<String, serde_json::Value>>,
    ) -> Result<RenderedMail, SampleError> {
        let entry = self
            .entry(template)
            .ok_or_else(|| RenderError::Unknown(template.clone()))?;
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

    /// Renders `template` for `to`, with `vars` plus `name` (the recipient's name, or their
    /// address when the name is empty), `email`, `brand` and `locale`, in `locale` or, when
    /// the template lacks it, in the locale [`Templates::locale_for`] picks.
    pub fn render(
        &self,
        template: &Template,
        locale: &Locale,
        to: &Recipient,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<RenderedMail, RenderError> {
        let locale = self
            .locale_for(template, locale)
            .ok_or_else(|| RenderError::Unknown(template.clone()))?;
        self.render_parts(template, &locale, to, vars)
    }

    fn render_parts(
        &self,
        template: &Template,
        locale: &Locale,
        to: &Recipient,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<RenderedMail, RenderError> {
        let ctx = self.context(locale, to, vars);
        let render = |ext: &str| {
            let file = template_file(template, locale, ext);
            let rendered = self
                .rendering
                .get_template(&file)
                .and_then(|t| t.render(ctx.clone()));
            // A failure is told from the file as written, so that its line is the file's.
            rendered
                .or_else(|_| self.env.get_template(&file)?.render(ctx.clone()))
                .map_err(|source| RenderError::Engine {
                    template: template.clone(),
                    locale: locale.clone(),
                    source,
                })
        };
        Ok(RenderedMail {
            locale: locale.clone(),
            // A subject is one line: a newline in a variable must not start a new header.
            subject: render("subject")?
                .replace(['\r', '\n'], " ")
                .trim()
                .to_string(),
            text: render("txt")?,
            html: render("html")?,
        })
    }

    /// What a template of this set sees when it renders for `to` in `locale`.
    fn context(
        &self,
        locale: &Locale,
        to: &Recipient,
        vars: &Map<String, serde_json::Value>,
    ) -> Value {
        let name = if to.name.trim().is_empty() {
            to.email.as_str().to_string()
        } else {
            to.name.clone()
        };
        Value::from_object(MailContext {
            name: Value::from(name),
            email: Value::from(to.email.as_str()),
            brand: self.brand.clone(),
            locale: Value::from(locale.as_str()),
            vars: Value::from(minijinja::value::Serde(vars)),
        })
    }
}

/// A render's variables: the mailer's own by field, then the request's `vars`. A lookup is
/// a match and at most one map look-up, where a merged context would search each source.
#[derive(Debug)]
struct MailContext {
    name: Value,
    email: Value,
    brand: Value,
    locale: Value,
    vars: Value,
}

impl Object for MailContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let own = match key {
            "name" => &self.name,
            "email" => &self.email,
            "brand" => &self.brand,
            "locale" => &self.locale,
            _ => return self.vars.get_attr(key).ok().filter(|v| !v.is_undefined()),
        };
        Some(own.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = RECIPIENT_VARS
            .into_iter()
            .chain(PROVIDED_VARS)
            .map(Value::from)
            .collect();
        if let Ok(vars) = self.vars.try_iter() {
            keys.extend(vars);
        }
        Enumerator::Values(keys)
    }
}

/// Reads the template files and the catalog of `dir` over the built-in files. Other files
/// (a README, an editor's swap file) are left alone.
fn read_dir(
    dir: &Path,
    files: &mut BTreeMap<String, SourceFile>,
) -> Result<Option<CatalogFile>, LoadError> {
    let unreadable = |path: &Path, e: std::io::Error| LoadError {
        file: path.display().to_string(),
        line: None,
        message: format!("cannot be read: {e}"),
    };
    let mut catalog = None;
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_part = TEMPLATE_PARTS
            .iter()
            .any(|part| name.ends_with(&format!(".{part}")));
        if name.starts_with('.') || !(is_part || name == "catalog.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
        let label = path.display().to_string();
        if name == "catalog.json" {
            catalog = Some(CatalogFile::parse(&text, &label)?);
        } else {
            files.insert(name.to_string(), SourceFile { label, text });
        }
    }
    Ok(catalog)
}

/// Refuses a file that no template of the catalog would ever use: `{template}.{locale}.{part}`
/// with the template in the catalog and the locale among its locales, or a layout.
fn check_name(name: &str, file: &SourceFile, catalog: &Catalog) -> Result<(), LoadError> {
    if LAYOUTS.contains(&name) {
        return Ok(());
    }
    let refuse = |message: String| LoadError {
        file: file.label.clone(),
        line: None,
        message,
    };
    let mut pieces = name.splitn(3, '.');
    let (Some(template), Some(locale), Some(_)) = (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(refuse(
            "is not named {template}.{locale}.subject, .txt or .html, nor layout.html or layout.txt".into(),
        ));
    };
    let entry = Template::parse(template)
        .ok()
        .and_then(|t| catalog.entry(&t))
        .ok_or_else(|| refuse(format!("catalog.json has no {template} template")))?;
    let listed = Locale::parse(locale)
        .ok()
        .filter(|l| entry.locales.contains(l) && l.as_str() == locale);
    if listed.is_none() {
        return Err(refuse(format!(
            "{locale} is not among the locales catalog.json lists for {template}"
        )));
    }
    Ok(())
}

/// A minijinja error as a load error, at the file and line it names (a layout's error is the
/// layout's), else at `file`.
fn engine_error(
    e: &minijinja::Error,
    files: &BTreeMap<String, SourceFile>,
    file: &SourceFile,
) -> LoadError {
    let at = e.name().and_then(|n| files.get(n)).unwrap_or(file);
    let mut message = e
        .detail()
        .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
    if let Some(source) = std::error::Error::source(e) {
        message.push_str(&format!(" ({source})"));
    }
    LoadError {
        file: at.label.clone(),
        line: e.line(),
        message,
    }
}

/// A variable a file uses without the catalog listing it, at the first line that names it.
fn unknown_var(file: &SourceFile, var: &str, why: &str) -> LoadError {
    let line = file
        .text
        .lines()
        .position(|l| catalog::names_word(l, var))
        .map(|i| i + 1);
    LoadError {
        file: file.label.clone(),
        line,
        message: format!("uses the variable {var}, but {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ada() -> Recipient {
        Recipient {
            email: domain::Email::parse("ada@example.com").unwrap(),
            name: "Ada".into(),
        }
    }

    #[test]
    fn every_built_in_body_is_rendered_joined_with_its_layout() {
        let templates = Templates::new();
        for entry in &templates.catalog.templates {
            for locale in &entry.locales {
                for part in ["txt", "html"] {
                    let name = template_file(&entry.name, locale, part);
                    let joined = templates.rendering.get_template(&name).unwrap();
                    assert!(
                        !joined.source().contains("extends"),
                        "{name} was not joined"
                    );
                    let written = templates.env.get_template(&name).unwrap();
                    assert!(
                        written.source().contains("extends"),
                        "{name} extends no layout"
                    );
                }
            }
        }
    }

    #[test]
    fn the_brand_signs_the_built_in_mails_and_its_links_make_the_footer() {
        let plain = Templates::new();
        let vars = json!({"changed_at": "2026-11-27T08:00:00Z"});
        let vars = vars.as_object().unwrap();
        let mail = plain
            .render(&Template::PASSWORD_CHANGED, &Locale::EN, &ada(), vars)
            .unwrap();
        assert!(mail.text.contains("The Facteur team"), "{}", mail.text);
        assert!(!mail.html.contains("<img"), "{}", mail.html);
        assert!(!mail.text.contains("--"), "{}", mail.text);

        let branded = Templates::load(&TemplateSource {
            brand: BrandConfig {
                name: "Comptoir & Co".into(),
                url: Some("https://comptoir.example".into()),
                support_email: Some("aide@comptoir.example".into()),
                logo_url: Some("https://comptoir.example/logo.png".into()),
            },
            ..TemplateSource::default()
        })
        .unwrap();
        let mail = branded
            .render(&Template::PASSWORD_CHANGED, &Locale::FR, &ada(), vars)
            .unwrap();
        assert!(mail.subject.contains("Comptoir & Co"), "{}", mail.subject);
        assert!(
            mail.text.contains("L'équipe Comptoir & Co"),
            "{}",
            mail.text
        );
        assert!(
            mail.text
                .contains("\n--\nhttps://comptoir.example\naide@comptoir.example"),
            "{}",
            mail.text
        );
        assert!(mail.html.contains("<html lang=\"fr\">"), "{}", mail.html);
        assert!(
            mail.html.contains("L'équipe Comptoir &amp; Co"),
            "{}",
            mail.html
        );
        assert!(
            mail.html
                .contains("<img src=\"https:&#x2f;&#x2f;comptoir.example&#x2f;logo.png\""),
            "{}",
            mail.html
        );
        assert!(
            mail.html.contains("mailto:aide@comptoir.example"),
            "{}",
            mail.html
        );
        for name in Template::BUILT_IN {
            assert!(
                EMBEDDED
                    .iter()
                    .filter(|(file, _)| file.starts_with(name.as_str()))
                    .all(|(_, text)| !text.contains("Facteur")),
                "{name} names no product"
            );
        }
    }

    #[test]
    fn a_request_is_admitted_only_for_a_catalog_template_and_told_its_locale() {
        let templates = Templates::new();
        let vars = json!({"login": "ada"});
        let vars = vars.as_object().unwrap();
        let de = Locale::parse("de").unwrap();
        assert_eq!(
            templates.admit(&Template::WELCOME, &de, vars),
            Ok(Locale::FR)
        );
        assert_eq!(
            templates.admit(&Template::WELCOME, &Locale::parse("en-GB").unwrap(), vars),
            Ok(Locale::EN)
        );
        let unknown = templates
            .admit(
                &Template::parse("order_shipped").unwrap(),
                &Locale::EN,
                vars,
            )
            .unwrap_err();
        assert_eq!(unknown.field, "template");
        assert!(unknown.message.contains("welcome"), "{unknown}");
        let wrong = json!({"login": 3});
        let wrong = templates
            .admit(&Template::WELCOME, &Locale::EN, wrong.as_object().unwrap())
            .unwrap_err();
        assert_eq!(wrong.field, "vars.login");
    }
}
