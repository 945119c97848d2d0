//! Every template renders in every locale, HTML is escaped, and a missing variable is an error.

use domain::{Email, Locale, Recipient, Template};
use mailer::Templates;
use serde_json::{Map, Value, json};

fn vars(template: &Template) -> Map<String, Value> {
    let v = match template.as_str() {
        "welcome" => json!({"login": "ada"}),
        "account_updated" => json!({"changed": ["email", "last_name"]}),
        "account_deleted" => json!({}),
        "password_reset" => {
            json!({"reset_url": "http://x/reset/abc", "expires_at": "2026-11-27T09:00:00Z"})
        }
        "email_verification" => {
            json!({"verify_url": "http://x/verify/abc", "expires_at": "2026-11-29T08:00:00Z"})
        }
        "email_changed" => {
            json!({"new_email": "b\u{2026}@example.org", "changed_at": "2026-11-27T08:00:00Z"})
        }
        "password_changed" => json!({"changed_at": "2026-11-27T08:00:00Z"}),
        other => panic!("no vars for {other}"),
    };
    v.as_object().unwrap().clone()
}

fn ada(name: &str) -> Recipient {
    Recipient {
        email: Email::parse("ada@example.com").unwrap(),
        name: name.into(),
    }
}

#[test]
fn every_template_renders_in_every_locale_with_text_and_html() {
    let templates = Templates::new();
    for template in Template::BUILT_IN {
        for locale in Locale::BUILT_IN {
            let mail = templates
                .render(&template, &locale, &ada("Ada"), &vars(&template))
                .unwrap_or_else(|e| panic!("{template} {locale}: {e}"));
            assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'));
            assert!(mail.text.contains("Ada"), "{template} {locale}");
            assert!(mail.html.contains("<p>"), "{template} {locale}");
            let greeting = if locale == Locale::FR {
                "Bonjour"
            } else {
                "Hello"
            };
            assert!(
                mail.text.starts_with(greeting),
                "{template} {locale}: {}",
                mail.text
            );
        }
    }
}

#[test]
fn variables_are_escaped_in_html_but_not_in_text() {
    let templates = Templates::new();
    let mail = templates
        .render(
            &Template::WELCOME,
            &Locale::EN,
            &ada("<script>alert(1)</script>"),
            &vars(&Template::WELCOME),
        )
        .unwrap();
    assert!(!mail.html.contains("<script>"));
    assert!(mail.html.contains("&lt;script&gt;"));
    assert!(mail.text.contains("<script>"));
}

#[test]
fn a_missing_variable_is_an_error_at_render() {
    let templates = Templates::new();
    let error = templates
        .render(
            &Template::PASSWORD_RESET,
            &Locale::FR,
            &ada("Ada"),
            &Map::new(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("password_reset"), "{error}");
}

#[test]
fn french_texts_carry_their_accents_and_the_values_given() {
    let templates = Templates::new();
    let mail = templates
        .render(
            &Template::ACCOUNT_UPDATED,
            &Locale::FR,
            &ada("Zoé"),
            &vars(&Template::ACCOUNT_UPDATED),
        )
        .unwrap();
    assert_eq!(mail.subject, "Votre compte Facteur a été modifié");
    assert!(mail.text.contains("email, last_name"));
    assert!(mail.text.contains("Zoé"));
}

#[test]
fn the_welcome_mail_carries_its_verification_paragraph_only_when_given_the_link() {
    let templates = Templates::new();
    let link = "https://facteur.example/email-verifications/tok-1";
    let with_link =
        json!({"login": "ada", "verify_url": link, "expires_at": "2026-11-29T08:00:00Z"});
    for locale in Locale::BUILT_IN {
        let plain = templates
            .render(
                &Template::WELCOME,
                &locale,
                &ada("Ada"),
                &vars(&Template::WELCOME),
            )
            .unwrap();
        let proving = templates
            .render(
                &Template::WELCOME,
                &locale,
                &ada("Ada"),
                with_link.as_object().unwrap(),
            )
            .unwrap();

        // The HTML body escapes the link's slashes; its token shows as it is.
        assert!(proving.text.contains(link), "{locale}: {}", proving.text);
        assert!(
            proving.html.contains("<a href=\"https:"),
            "{locale}: {}",
            proving.html
        );
        for part in [&proving.text, &proving.html] {
            assert!(part.contains("tok-1"), "{locale}: {part}");
            assert!(part.contains("2026-11-29T08:00:00Z"), "{locale}: {part}");
        }
        for part in [&plain.text, &plain.html] {
            assert!(!part.contains("tok-1"), "{locale}: {part}");
            assert!(!part.contains("2026-11-29"), "{locale}: {part}");
            assert!(part.contains("ada"), "{locale}: {part}");
        }
        assert!(!plain.text.contains("\n\n\n"), "{locale}: {}", plain.text);
        assert!(
            !proving.text.contains("\n\n\n"),
            "{locale}: {}",
            proving.text
        );
        assert_eq!(plain.subject, proving.subject);
    }
}

#[test]
fn the_email_changed_mail_names_the_masked_address_and_carries_no_link() {
    let templates = Templates::new();
    for locale in Locale::BUILT_IN {
        let mail = templates
            .render(
                &Template::EMAIL_CHANGED,
                &locale,
                &ada("Ada"),
                &vars(&Template::EMAIL_CHANGED),
            )
            .unwrap();
        assert!(mail.text.contains("b\u{2026}@example.org"), "{}", mail.text);
        assert!(mail.html.contains("b\u{2026}@example.org"), "{}", mail.html);
        assert!(mail.text.contains("2026-11-27T08:00:00Z"));
        for part in [&mail.text, &mail.html] {
            assert!(!part.contains("http"), "{locale}: {part}");
            assert!(!part.contains("<a "), "{locale}: {part}");
        }
    }
}
