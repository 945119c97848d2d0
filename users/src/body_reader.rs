//! Field-by-field reading of a JSON object body, collecting every problem before answering.
//!
//! A 400 names each bad field with its own sentence, so a client fixes everything at once
//! instead of one field per round trip. Messages never repeat the submitted value, which may
//! be a password.

use crate::error::ApiError;
use domain::Invalid;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The fields of one body and the problems found so far.
pub(crate) struct BodyReader {
    map: Map<String, Value>,
    errors: BTreeMap<String, String>,
}

impl BodyReader {
    /// Starts reading `map`; any key outside `known` is reported as unknown.
    pub fn new(map: Map<String, Value>, known: &[&str]) -> Self {
        let mut errors = BTreeMap::new();
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                errors.insert(
                    key.clone(),
                    format!("is not a known field; expected one of {}", known.join(", ")),
                );
            }
        }
        Self { map, errors }
    }

    /// Records a problem with `field`.
    pub fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert(message.into());
    }

    /// True when the body has `field` (even `null`).
    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// A string that must be present.
    pub fn required_string(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            None | Some(Value::Null) => {
                self.reject(field, "is required");
                None
            }
            Some(value) => self.string(field, value),
        }
    }

    /// A string that may be absent: `None` when absent, `Some(None)` when `null`.
    pub fn optional_string(&mut self, field: &str) -> Option<Option<String>> {
        match self.map.remove(field) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => self.string(field, value).map(Some),
        }
    }

    /// A list of strings that may be absent.
    pub fn optional_string_list(&mut self, field: &str) -> Option<Vec<String>> {
        match self.map.remove(field)? {
            Value::Null => Some(Vec::new()),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => {
                            self.reject(field, "must be a list of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.reject(field, "must be a list of strings");
                None
            }
        }
    }

    fn string(&mut self, field: &str, value: Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s),
            _ => {
                self.reject(field, "must be a string");
                None
            }
        }
    }

    /// Runs a domain parser on a value read above, recording its error.
    pub fn parse<T>(
        &mut self,
        value: Option<String>,
        parse: impl FnOnce(String) -> Result<T, Invalid>,
    ) -> Option<T> {
        match parse(value?) {
            Ok(v) => Some(v),
            Err(e) => {
                self.reject(&e.field, e.message);
                None
            }
        }
    }

    /// Ok when no field was bad.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }
}
