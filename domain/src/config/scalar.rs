//! Strings that YAML or an environment variable may have written as numbers or booleans.

use serde::{Deserialize, Deserializer};

/// Deserializes a string, also accepting a number or a boolean written where a string belongs
/// (`password: 12345` in YAML).
pub(crate) fn string_or_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        U(u64),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::U(n) => n.to_string(),
        Scalar::I(n) => n.to_string(),
        Scalar::F(n) => n.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

/// [`string_or_scalar`] for an optional key that is present.
pub(super) fn option_string_or_scalar<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    string_or_scalar(d).map(Some)
}
