//! The template catalog (`catalog.json`): for each template a one-sentence description, its
//! locales and, for each of its variables, a description and a sample value, plus the sample
//! recipient previews are rendered for.
//!
//! It is the one place the mailer reads to list templates, to check the variables of a
//! request or a render and to fill a preview. The built-in catalog is the default; a
//! `catalog.json` in `mailer.templates_dir` adds entries and replaces built-in ones of the same
//! name. [`super::Templates::load`] compares the merged catalog with the template files.

use super::{LoadError, RECIPIENT_VARS};
use domain::{Invalid, Locale, Recipient, Template};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A `catalog.json` as read: the built-in one has every field, a folder's only `templates`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// The recipient previews and sample renders are addressed to.
    #[serde(default)]
    recipient: Option<Recipient>,
    /// The variables every template gets from the recipient, not from `vars`.
    #[serde(default)]
    recipient_vars: Option<Vec<RecipientVar>>,
    /// One entry per template.
    templates: Vec<TemplateEntry>,
}

/// The merged catalog of a loaded set.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The recipient previews and sample renders are addressed to.
    pub recipient: Recipient,
    /// The variables every template gets from the recipient, not from `vars`.
    pub recipient_vars: Vec<RecipientVar>,
    /// One entry per template: the built-in ones in the built-in order, then the others by
    /// name.
    pub templates: Vec<TemplateEntry>,
}

/// A variable filled from the recipient.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientVar {
    /// `name` or `email`.
    pub name: String,
    /// One sentence.
    pub description: String,
}

/// What the catalog says about one template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntry {
    /// The template.
    pub name: Template,
    /// One sentence: when the mail is sent.
    pub description: String,
    /// The locales it is written in.
    pub locales: Vec<Locale>,
    /// The variables a mail request passes in `vars`.
    pub vars: Vec<VarEntry>,
    /// The catalog file the entry comes from, for error messages.
    #[serde(skip)]
    pub origin: String,
    /// The line of its name in that file.
    #[serde(skip)]
    pub line: Option<usize>,
}

/// One variable of a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarEntry {
    /// The key in `vars`.
    pub name: String,
    /// One sentence.
    pub description: String,
    /// The value previews use; a mail request's value must be of the same JSON type.
    pub sample: Value,
    /// True when a mail request may leave the variable out (the template then leaves out
    /// what uses it); previews and sample renders still show it.
    #[serde(default)]
    pub optional: bool,
    /// The line of its name in the catalog file.
    #[serde(skip)]
    pub line: Option<usize>,
}

/// Whether `line` holds `word` as a whole identifier (not inside a longer name).
pub(super) fn names_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        !line[..at].chars().next_back().is_some_and(ident)
            && !line[at + word.len()..].chars().next().is_some_and(ident)
    })
}

/// The kind of a JSON value, as a sentence names it.
fn kind(value: &Value) -> &'static str {
    domain::mail::json_kind(value)
}

impl TemplateEntry {
    /// The sample value of every variable, as a mail request's `vars`.
    pub fn samples(&self) -> Map<String, Value> {
        self.vars
            .iter()
            .map(|v| (v.name.clone(), v.sample.clone()))
            .collect()
    }

    /// Checks `vars` against this entry: each variable named in the catalog must be there,
    /// and nothing else, each of its sample's JSON type; then the values must pass the mail
    /// request check of the built-in mails. The answer maps each bad `vars.<name>` to one
    /// sentence.
    pub fn check_vars(&self, vars: &Map<String, Value>) -> Result<(), BTreeMap<String, String>> {
        let template = self.name.as_str();
        let mut bad = BTreeMap::new();
        for var in &self.vars {
            match vars.get(&var.name) {
                None if !var.optional => {
                    bad.insert(
                        format!("vars.{}", var.name),
                        format!("is required by the {template} template"),
                    );
                }
                Some(value) if kind(value) != kind(&var.sample) => {
                    bad.insert(
                        format!("vars.{}", var.name),
                        format!("must be {}, not {}", kind(&var.sample), kind(value)),
                    );
                }
                _ => {}
            }
        }
        for key in vars.keys() {
            if RECIPIENT_VARS.contains(&key.as_str()) {
                bad.insert(
                    format!("vars.{key}"),
                    "comes from the recipient, not from vars".to_string(),
                );
            } else if !self.vars.iter().any(|v| &v.name == key) {
                bad.insert(
                    format!("vars.{key}"),
                    format!("is not a variable of the {template} template"),
                );
            }
        }
        if bad.is_empty()
            && let Err(invalid) = self.name.check_vars(vars)
        {
            bad.insert(invalid.field, invalid.message);
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// The check of a mail request's `vars`: what [`TemplateEntry::check_vars`] finds,
    /// except that a variable the catalog does not list is let through (the sender may know
    /// a newer catalog), as one sentence naming the first defect.
    pub fn check_request_vars(&self, vars: &Map<String, Value>) -> Result<(), Invalid> {
        let known: Map<String, Value> = vars
            .iter()
            .filter(|(k, _)| self.vars.iter().any(|v| &v.name == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match self.check_vars(&known) {
            Ok(()) => Ok(()),
            Err(bad) => {
                let (field, message) = bad.into_iter().next().expect("an error names a field");
                Err(Invalid::new(field, message))
            }
        }
    }
}

impl CatalogFile {
    /// Reads a catalog from its JSON text; `label` names the file in errors.
    pub fn parse(json: &str, label: &str) -> Result<Self, LoadError> {
        let mut file: CatalogFile = serde_json::from_str(json).map_err(|e| LoadError {
            file: label.to_string(),
            line: Some(e.line()),
            message: format!("cannot be read: {e}"),
        })?;
        let lines: Vec<&str> = json.lines().collect();
        let line_of = |word: &str, from: usize| {
            lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| l.contains("\"name\"") && l.contains(&format!("\"{word}\"")))
                .map(|(i, _)| i + 1)
        };
        for entry in &mut file.templates {
            entry.origin = label.to_string();
            entry.line = line_of(entry.name.as_str(), 0);
            let from = entry.line.unwrap_or(0);
            for var in &mut entry.vars {
                var.line = line_of(&var.name, from);
            }
        }
        Ok(file)
    }
}

impl Catalog {
    /// The built-in catalog with a folder's over it: the folder's entries replace built-in
    /// ones of the same name and add the others. Refuses a catalog that lacks a mail or a
    /// locale the contract promises, or that names a template twice.
    pub fn merge(built_in: CatalogFile, own: Option<CatalogFile>) -> Result<Self, LoadError> {
        let recipient = own
            .as_ref()
            .and_then(|o| o.recipient.clone())
            .or(built_in.recipient)
            .expect("the built-in catalog has a sample recipient");
        let recipient_vars = built_in
            .recipient_vars
            .expect("the built-in catalog documents the recipient variables");
        let mut templates = built_in.templates;
        if let Some(own) = own {
            if let Some(documented) = &own.recipient_vars {
                let names: BTreeSet<&str> = documented.iter().map(|v| v.name.as_str()).collect();
                if names != BTreeSet::from(RECIPIENT_VARS) {
                    return Err(LoadError {
                        file: own
                            .templates
                            .first()
                            .map(|e| e.origin.clone())
                            .unwrap_or_default(),
                        line: None,
                        message: format!("recipient_vars must be exactly {RECIPIENT_VARS:?}"),
                    });
                }
            }
            let mut seen = BTreeSet::new();
            for entry in own.templates {
                if !seen.insert(entry.name.clone()) {
                    return Err(LoadError {
                        file: entry.origin.clone(),
                        line: entry.line,
                        message: format!("the {} template is listed twice", entry.name),
                    });
                }
                match templates.iter_mut().find(|e| e.name == entry.name) {
                    Some(built) => *built = entry,
                    None => templates.push(entry),
                }
            }
        }
        templates.sort_by_key(|e| {
            (
                Template::BUILT_IN
                    .iter()
                    .position(|t| *t == e.name)
                    .unwrap_or(usize::MAX),
                e.name.clone(),
            )
        });
        for template in Template::BUILT_IN {
            if !templates.iter().any(|e| e.name == template) {
                return Err(LoadError {
                    file: format!("{}/catalog.json", super::BUILT_IN),
                    line: None,
                    message: format!(
                        "the {template} template, which the contract promises, has no entry"
                    ),
                });
            }
        }
        for entry in &templates {
            entry.check_shape()?;
        }
        Ok(Self {
            recipient,
            recipient_vars,
            templates,
        })
    }

    /// The sample value of the recipient variable `var` (`name` or `email`).
    pub fn recipient_sample(&self, var: &str) -> Value {
        match var {
            "email" => self.recipient.email.as_str().into(),
            _ => self.recipient.name.clone().into(),
        }
    }

    /// The entry of `template`, if the catalog has one.
    pub fn entry(&self, template: &Template) -> Option<&TemplateEntry> {
        self.templates.iter().find(|e| &e.name == template)
    }

    /// Every template name, in the catalog's order.
    pub fn names(&self) -> Vec<&str> {
        self.templates.iter().map(|e| e.name.as_str()).collect()
    }
}

impl TemplateEntry {
    /// What an entry must be by itself: each locale and variable once, no recipient variable
    /// in `vars`, and for a mail the contract promises, its locales and samples that the mail
    /// request check accepts and the same required variables as that check.
    fn check_shape(&self) -> Result<(), LoadError> {
        let template = &self.name;
        let refuse = |line: Option<usize>, message: String| LoadError {
            file: self.origin.clone(),
            line: line.or(self.line),
            message,
        };
        let mut locales = BTreeSet::new();
        for locale in &self.locales {
            if !locales.insert(locale) {
                return Err(refuse(
                    None,
                    format!("{template}: the locale {locale} is listed twice"),
                ));
            }
        }
        if self.locales.is_empty() {
            return Err(refuse(None, format!("{template}: no locale is listed")));
        }
        let mut names = BTreeSet::new();
        for var in &self.vars {
            if !names.insert(var.name.as_str()) {
                return Err(refuse(
                    var.line,
                    format!("{template}: the variable {} is listed twice", var.name),
                ));
            }
            if RECIPIENT_VARS.contains(&var.name.as_str())
                || super::PROVIDED_VARS.contains(&var.name.as_str())
            {
                return Err(refuse(
                    var.line,
                    format!(
                        "{template}: {} is given to every template and must not be listed in vars",
                        var.name
                    ),
                ));
            }
        }
        if !template.is_built_in() {
            return Ok(());
        }
        for locale in Locale::BUILT_IN {
            if !self.locales.contains(&locale) {
                return Err(refuse(
                    None,
                    format!(
                        "{template} is a mail the contract promises in fr and en: {locale} cannot be left out"
                    ),
                ));
            }
        }
        let samples = self.samples();
        if let Err(invalid) = template.check_vars(&samples) {
            return Err(refuse(
                None,
                format!(
                    "{template}: the sample vars are refused by the mail request check: {invalid}"
                ),
            ));
        }
        for var in self.vars.iter().filter(|v| !v.optional) {
            let mut without = samples.clone();
            without.remove(&var.name);
            if template.check_vars(&without).is_ok() {
                return Err(refuse(
                    var.line,
                    format!(
                        "{template}: the mail request check does not require the variable {}",
                        var.name
                    ),
                ));
            }
        }
        let mut required_only = samples.clone();
        required_only.retain(|name, _| self.vars.iter().any(|v| &v.name == name && !v.optional));
        if required_only.len() < samples.len()
            && let Err(invalid) = template.check_vars(&required_only)
        {
            return Err(refuse(
                None,
                format!(
                    "{template}: the mail request check requires a variable the catalog marks optional: {invalid}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CATALOG, TemplateSource, Templates};
    use super::*;
    use serde_json::json;

    /// The embedded catalog, changed by `edit`, loaded as a folder's catalog over the
    /// built-in files.
    fn load_edited(edit: impl FnOnce(&mut Value)) -> Result<(), String> {
        let mut json: Value = serde_json::from_str(CATALOG).unwrap();
        edit(&mut json);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("catalog.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        Templates::load(&TemplateSource {
            dir: Some(dir.path().to_path_buf()),
            ..TemplateSource::default()
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn entry_of<'a>(json: &'a mut Value, name: &str) -> &'a mut Value {
        json["templates"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["name"] == name)
            .unwrap()
    }

    #[test]
    fn the_embedded_catalog_agrees_with_the_templates() {
        assert_eq!(load_edited(|_| {}), Ok(()));
    }

    #[test]
    fn a_catalog_missing_a_variable_a_template_uses_is_refused_naming_it() {
        let defect = load_edited(|json| {
            let vars = entry_of(json, "password_reset")["vars"]
                .as_array_mut()
                .unwrap();
            vars.retain(|v| v["name"] != "expires_at");
        })
        .unwrap_err();
        // A built-in mail's catalog must also keep to the mail request check.
        assert!(defect.contains("catalog.json:"), "{defect}");
        assert!(defect.contains("password_reset"), "{defect}");
        assert!(defect.contains("expires_at"), "{defect}");
    }

    #[test]
    fn a_catalog_listing_a_variable_no_file_uses_is_refused_naming_it() {
        let defect = load_edited(|json| {
            entry_of(json, "welcome")["vars"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "coupon", "description": "A code.", "sample": "X"}));
        })
        .unwrap_err();
        assert!(defect.contains("variable coupon"), "{defect}");
        assert!(defect.contains("catalog.json:"), "{defect}");
    }

    #[test]
    fn a_built_in_mail_without_a_promised_locale_is_refused_naming_it() {
        let defect = load_edited(|json| {
            entry_of(json, "welcome")["locales"] = json!(["en"]);
        })
        .unwrap_err();
        assert!(
            defect.contains("welcome is a mail the contract promises"),
            "{defect}"
        );
    }

    #[test]
    fn a_sample_the_mail_request_check_refuses_is_a_defect() {
        let defect = load_edited(|json| {
            entry_of(json, "account_updated")["vars"][0]["sample"] = json!("email");
        })
        .unwrap_err();
        assert!(defect.contains("vars.changed"), "{defect}");
    }

    #[test]
    fn an_optional_variable_the_mail_request_check_requires_is_a_defect() {
        let defect = load_edited(|json| {
            entry_of(json, "password_reset")["vars"][0]["optional"] = json!(true);
        })
        .unwrap_err();
        assert!(defect.contains("marks optional"), "{defect}");
    }

    #[test]
    fn optional_variables_may_be_left_out_but_not_misspelt() {
        let templates = Templates::new();
        let entry = templates.entry(&Template::WELCOME).unwrap();
        assert!(
            entry
                .check_vars(json!({"login": "ada"}).as_object().unwrap())
                .is_ok()
        );
        assert!(entry.check_vars(&entry.samples()).is_ok());
        let half = json!({"login": "ada", "verify_url": "https://x/v"});
        let bad = entry.check_vars(half.as_object().unwrap()).unwrap_err();
        assert!(bad.contains_key("vars.expires_at"), "{bad:?}");
        let misspelt = json!({"login": "ada", "verify_link": "https://x/v"});
        let bad = entry.check_vars(misspelt.as_object().unwrap()).unwrap_err();
        assert!(bad.contains_key("vars.verify_link"), "{bad:?}");
    }

    #[test]
    fn given_vars_must_be_exactly_the_templates_variables() {
        let templates = Templates::new();
        let entry = templates.entry(&Template::PASSWORD_RESET).unwrap();
        let vars = json!({"reset_url": "https://x/r", "name": "Eve", "coupon": 1});
        let bad = entry.check_vars(vars.as_object().unwrap()).unwrap_err();
        assert_eq!(
            bad.keys().collect::<Vec<_>>(),
            ["vars.coupon", "vars.expires_at", "vars.name"]
        );
        assert!(bad["vars.expires_at"].contains("required"));
        assert!(bad["vars.name"].contains("recipient"));
        let wrong_type = json!({"reset_url": "https://x/r", "expires_at": 3});
        let bad = entry
            .check_vars(wrong_type.as_object().unwrap())
            .unwrap_err();
        assert_eq!(bad["vars.expires_at"], "must be a string, not a number");
        assert!(entry.check_vars(&entry.samples()).is_ok());
    }
}
