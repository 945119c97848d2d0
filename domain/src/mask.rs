//! How an address is shown to someone who may not see it whole.

/// `ada@example.com` → `a…@example.com`: the first character, an ellipsis, the domain.
pub fn mask_email(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}\u{2026}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::mask_email;

    #[test]
    fn only_the_first_character_and_the_domain_are_shown() {
        assert_eq!(mask_email("ada@example.com"), "a\u{2026}@example.com");
        assert_eq!(mask_email("é.x@exemple.fr"), "é\u{2026}@exemple.fr");
    }
}
