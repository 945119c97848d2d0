//! What the derived JSON schemas of the mail request cannot say by themselves: which
//! characters a display name may not hold, and which variables each template needs. Both
//! the mailer's OpenAPI and AsyncAPI documents take the mail request's schema from
//! [`mail_request_with`], so a request that keeps to either document is accepted.

use crate::MailRequest;
use serde_json::json;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AllOfBuilder, Object, ObjectBuilder, Schema, Type};

/// A display name: no character that [`crate::plain_text`] refuses.
pub fn plain_name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(concat!(
            "^",
            crate::forbidden_beyond_bmp!(),
            r"[^",
            crate::forbidden_class!(),
            r"]*$"
        )))
        .description(Some(
            "The display name (default empty); no control, format or line-separator characters",
        ))
        .build()
}

/// The mail request's schema with the built-in mails' variants only (the mailer's documents
/// add the loaded catalog's other templates with [`mail_request_with`]).
pub fn mail_request() -> RefOr<Schema> {
    mail_request_with(Vec::new())
}

/// The variant of a template outside the built-in set: its name, its variables with the JSON
/// type of their samples, and those a request must give.
pub fn template_variant(
    name: &str,
    vars: &[(String, serde_json::Value)],
    required: &[String],
) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = vars
        .iter()
        .map(|(var, sample)| {
            let kind = match sample {
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Null => "null",
            };
            (var.clone(), json!({"type": kind}))
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "template": {"type": "string", "enum": [name]},
            "vars": {"type": "object", "properties": properties, "required": required},
        },
        "required": if required.is_empty() { vec![] } else { vec!["vars"] },
    })
}

/// The mail request's schema: its fields, and the variables each template needs, as
/// [`crate::Template::check_vars`] checks them for the built-in mails (a request without
/// them is `rejected`), then `others`, the variants of the other templates.
pub fn mail_request_with(others: Vec<serde_json::Value>) -> RefOr<Schema> {
    let text = json!({"type": "string", "minLength": 1});
    let needs = |template: &str, vars: serde_json::Value, required: &[&str]| {
        json!({
            "type": "object",
            "properties": {
                "template": {"type": "string", "enum": [template]},
                "vars": {"type": "object", "properties": vars, "required": required},
            },
            "required": if required.is_empty() { vec![] } else { vec!["vars"] },
        })
    };
    let variants = json!({"oneOf": [
        // The verification paragraph's link and expiry come together or not at all.
        needs("welcome", json!({"login": text, "verify_url": text, "expires_at": text}),
            &["login", "verify_url", "expires_at"]),
        json!({
            "type": "object",
            "properties": {
                "template": {"type": "string", "enum": ["welcome"]},
                "vars": {"type": "object", "properties": {"login": text},
                    "required": ["login"], "additionalProperties": false},
            },
            "required": ["vars"],
        }),
        needs("email_verification", json!({"verify_url": text, "expires_at": text}),
            &["verify_url", "expires_at"]),
        needs("email_changed", json!({"new_email": text, "changed_at": text}),
            &["new_email", "changed_at"]),
        needs("password_changed", json!({"changed_at": text}), &["changed_at"]),
        needs("account_deleted", json!({}), &[]),
        needs("password_reset", json!({"reset_url": text, "expires_at": text}),
            &["reset_url", "expires_at"]),
        needs("account_updated", json!({"changed": {
            "type": "array", "minItems": 1, "items": {"type": "string"}}}), &["changed"]),
    ]});
    let mut variants = variants;
    if let Some(list) = variants["oneOf"].as_array_mut() {
        list.extend(others);
    }
    let variants: RefOr<Schema> =
        serde_json::from_value(variants).expect("the variants are a schema");
    let whole = AllOfBuilder::new()
        .item(<MailRequest as PartialSchema>::schema())
        .item(variants)
        .description(Some(
            "A mail request; each template needs its own variables.",
        ))
        .build();
    Schema::AllOf(whole).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_its_variant() {
        let schema = serde_json::to_value(mail_request()).unwrap();
        let variants = schema
            .pointer("/allOf/1/oneOf")
            .unwrap()
            .as_array()
            .unwrap();
        for template in crate::Template::BUILT_IN {
            assert!(
                variants.iter().any(|v| v
                    .pointer("/properties/template/enum/0")
                    .is_some_and(|t| t == template.as_str())),
                "{template}"
            );
        }
    }
}
