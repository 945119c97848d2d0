//! The template catalog (`mailer/templates/catalog.json`): for each template a one-sentence
//! description, its locales and, for each of its variables, a description and a sample value,
//! plus the sample recipient previews are rendered for.
//!
//! It is the one place the mailer reads to list templates, to check the variables of a render
//! and to fill a preview. [`Catalog::check`] compares it with the template files themselves
//! (the variables each file uses, through minijinja) and with the mail request check of
//! `domain`, so the list, the render and the preview cannot drift from the templates.

use super::{RECIPIENT_VARS, TEMPLATE_PARTS, template_file};
use domain::{Locale, Recipient, Template};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The catalog, as read from its JSON file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The recipient previews and sample renders are addressed to.
    pub recipient: Recipient,
    /// The variables every template gets from the recipient, not from `vars`.
    pub recipient_vars: Vec<RecipientVar>,
    /// One entry per template.
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
}

/// One variable of a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarEntry {
    /// The key in `vars`.
    pub name: String,
    /// One sentence.
    pub description: String,
    /// The value previews use.
    pub sample: Value,
    /// True when a mail request may leave the variable out (the template then leaves out
    /// what uses it); previews and sample renders still show it.
    #[serde(default)]
    pub optional: bool,
}

/// Every disagreement between the catalog and the templates, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogDefects(pub Vec<String>);

impl fmt::Display for CatalogDefects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the template catalog disagrees with the templates: {}",
            self.0.join("; ")
        )
    }
}

impl std::error::Error for CatalogDefects {}

impl TemplateEntry {
    /// The sample value of every variable, as a mail request's `vars`.
    pub fn samples(&self) -> Map<String, Value> {
        self.vars
            .iter()
            .map(|v| (v.name.clone(), v.sample.clone()))
            .collect()
    }

    /// Checks `vars` against this entry: each variable named in the catalog must be there, and
    /// nothing else; then the values must pass the mail request check. The answer maps each
    /// bad `vars.<name>` to one sentence.
    pub fn check_vars(&self, vars: &Map<String, Value>) -> Result<(), BTreeMap<String, String>> {
        let template = self.name.as_str();
        let mut bad = BTreeMap::new();
        for var in &self.vars {
            if !var.optional && !vars.contains_key(&var.name) {
                bad.insert(
                    format!("vars.{}", var.name),
                    format!("is required by the {template} template"),
                );
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
}

impl Catalog {
    /// Reads the catalog from its JSON text.
    pub fn parse(json: &str) -> Result<Self, CatalogDefects> {
        serde_json::from_str(json)
            .map_err(|e| CatalogDefects(vec![format!("catalog.json cannot be read: {e}")]))
    }

    /// The sample value of the recipient variable `var` (`name` or `email`).
    pub fn recipient_sample(&self, var: &str) -> Value {
        match var {
            "email" => self.recipient.email.as_str().into(),
            _ => self.recipient.name.clone().into(),
        }
    }

    /// The entry of `template`. Every template has one once [`Catalog::check`] passed.
    pub fn entry(&self, template: Template) -> Option<&TemplateEntry> {
        self.templates.iter().find(|e| e.name == template)
    }

    /// Compares the catalog with the templates loaded in `env`:
    /// - every template of [`Template::ALL`] has exactly one entry, in every [`Locale::ALL`];
    /// - every variable a subject, text or HTML file uses is in its entry or is a recipient
    ///   variable, and every variable of an entry is used in each of its locales;
    /// - the recipient variables are exactly those the renderer fills;
    /// - the samples pass the mail request check, which also refuses them with any one
    ///   variable left out, so the catalog and that check require the same variables.
    pub fn check(&self, env: &Environment<'_>) -> Result<(), CatalogDefects> {
        let mut defects = Vec::new();
        let documented: BTreeSet<&str> = self
            .recipient_vars
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        if documented != BTreeSet::from(RECIPIENT_VARS) {
            defects.push(format!(
                "recipient_vars must be exactly {RECIPIENT_VARS:?}, found {documented:?}"
            ));
        }
        for template in Template::ALL {
            match self.templates.iter().filter(|e| e.name == template).count() {
                0 => defects.push(format!("the {template} template has no entry")),
                1 => {}
                _ => defects.push(format!("the {template} template has several entries")),
            }
        }
        for entry in &self.templates {
            check_entry(entry, env, &mut defects);
        }
        if defects.is_empty() {
            Ok(())
        } else {
            Err(CatalogDefects(defects))
        }
    }
}

fn check_entry(entry: &TemplateEntry, env: &Environment<'_>, defects: &mut Vec<String>) {
    let template = entry.name;
    let locales: BTreeSet<&str> = entry.locales.iter().map(|l| l.as_str()).collect();
    let expected: BTreeSet<&str> = Locale::ALL.iter().map(|l| l.as_str()).collect();
    if locales != expected || entry.locales.len() != Locale::ALL.len() {
        defects.push(format!(
            "the {template} template must list each locale of {expected:?} once, found {:?}",
            entry.locales
        ));
    }
    let mut names = BTreeSet::new();
    for var in &entry.vars {
        if !names.insert(var.name.as_str()) {
            defects.push(format!(
                "{template}: the variable {} is listed twice",
                var.name
            ));
        }
        if RECIPIENT_VARS.contains(&var.name.as_str()) {
            defects.push(format!(
                "{template}: {} comes from the recipient and must not be listed in vars",
                var.name
            ));
        }
    }
    for locale in Locale::ALL {
        let mut used_here = BTreeSet::new();
        for part in TEMPLATE_PARTS {
            let file = template_file(template, locale, part);
            let Ok(compiled) = env.get_template(&file) else {
                defects.push(format!("{file} is not loaded"));
                continue;
            };
            for used in compiled.undeclared_variables(false) {
                if !names.contains(used.as_str()) && !RECIPIENT_VARS.contains(&used.as_str()) {
                    defects.push(format!(
                        "{file} uses the variable {used}, which the catalog does not list for {template}"
                    ));
                }
                used_here.insert(used);
            }
        }
        for name in &names {
            if !used_here.contains(*name) {
                defects.push(format!(
                    "{template}: the catalog lists the variable {name}, which no {locale} file of the template uses"
                ));
            }
        }
    }
    let samples = entry.samples();
    if let Err(invalid) = template.check_vars(&samples) {
        defects.push(format!(
            "{template}: the sample vars are refused by the mail request check: {invalid}"
        ));
    }
    for var in entry.vars.iter().filter(|v| !v.optional) {
        let mut without = samples.clone();
        without.remove(&var.name);
        if template.check_vars(&without).is_ok() {
            defects.push(format!(
                "{template}: the mail request check does not require the variable {}",
                var.name
            ));
        }
    }
    let mut required_only = samples.clone();
    required_only.retain(|name, _| entry.vars.iter().any(|v| &v.name == name && !v.optional));
    if required_only.len() < samples.len()
        && let Err(invalid) = template.check_vars(&required_only)
    {
        defects.push(format!(
            "{template}: the mail request check requires a variable the catalog marks optional: {invalid}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CATALOG, Templates};
    use super::*;
    use serde_json::json;

    /// The embedded catalog, changed by `edit`, checked against the embedded templates.
    fn check_edited(edit: impl FnOnce(&mut Value)) -> Result<(), CatalogDefects> {
        let mut json: Value = serde_json::from_str(CATALOG).unwrap();
        edit(&mut json);
        let catalog = Catalog::parse(&json.to_string())?;
        catalog.check(&Templates::new().env)
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
        assert_eq!(check_edited(|_| {}), Ok(()));
    }

    #[test]
    fn a_catalog_missing_a_variable_a_template_uses_is_refused_naming_it() {
        let defects = check_edited(|json| {
            let vars = entry_of(json, "password_reset")["vars"]
                .as_array_mut()
                .unwrap();
            vars.retain(|v| v["name"] != "expires_at");
        })
        .unwrap_err()
        .to_string();
        assert!(
            defects.contains("password_reset.en.txt uses the variable expires_at"),
            "{defects}"
        );
        assert!(defects.contains("password_reset.fr.html"), "{defects}");
    }

    #[test]
    fn a_catalog_listing_a_variable_no_file_uses_is_refused_naming_it() {
        let defects = check_edited(|json| {
            entry_of(json, "welcome")["vars"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "coupon", "description": "A code.", "sample": "X"}));
        })
        .unwrap_err()
        .to_string();
        assert!(defects.contains("variable coupon"), "{defects}");
    }

    #[test]
    fn a_catalog_without_a_template_or_a_locale_is_refused_naming_it() {
        let defects = check_edited(|json| {
            json["templates"]
                .as_array_mut()
                .unwrap()
                .retain(|e| e["name"] != "account_deleted");
            entry_of(json, "welcome")["locales"] = json!(["en"]);
        })
        .unwrap_err()
        .to_string();
        assert!(
            defects.contains("the account_deleted template has no entry"),
            "{defects}"
        );
        assert!(
            defects.contains("the welcome template must list"),
            "{defects}"
        );
    }

    #[test]
    fn a_sample_the_mail_request_check_refuses_is_a_defect() {
        let defects = check_edited(|json| {
            entry_of(json, "account_updated")["vars"][0]["sample"] = json!("email");
        })
        .unwrap_err()
        .to_string();
        assert!(defects.contains("vars.changed"), "{defects}");
    }

    #[test]
    fn an_optional_variable_the_mail_request_check_requires_is_a_defect() {
        let defects = check_edited(|json| {
            entry_of(json, "password_reset")["vars"][0]["optional"] = json!(true);
        })
        .unwrap_err()
        .to_string();
        assert!(defects.contains("marks optional"), "{defects}");
    }

    #[test]
    fn optional_variables_may_be_left_out_but_not_misspelt() {
        let templates = Templates::new();
        let entry = templates.entry(Template::Welcome);
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
        let entry = templates.entry(Template::PasswordReset);
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
        assert_eq!(bad["vars.expires_at"], "must be a string");
        assert!(entry.check_vars(&entry.samples()).is_ok());
    }
}
