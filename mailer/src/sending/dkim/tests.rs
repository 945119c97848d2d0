use super::*;
use crate::sending::message::{Letterhead, build_message};
use crate::templates::RenderedMail;
use domain::{Email, Locale, MailRequestId, Recipient, Template};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use std::path::Path;
use std::time::Instant;
use tempfile::TempDir;

/// A key for these tests only, from fixed bytes.
fn ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn config(file: &Path) -> DkimConfig {
    DkimConfig {
        domain: "facteur.example".into(),
        selector: "s1".into(),
        private_key_file: file.to_path_buf(),
    }
}

fn key_file(dir: &TempDir, pem: &str) -> std::path::PathBuf {
    let path = dir.path().join("dkim.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

fn ed25519_signer(dir: &TempDir) -> DkimSigner {
    let pem = ed25519_key().to_pkcs8_pem(LineEnding::LF).unwrap();
    DkimSigner::load(&config(&key_file(dir, &pem))).unwrap()
}

fn letterhead(dkim: Option<DkimSigner>) -> Letterhead {
    Letterhead {
        from: "Facteur <no-reply@facteur.example>".parse().unwrap(),
        domain: "facteur.example".into(),
        dkim,
        bounce_domain: None,
    }
}

fn welcome() -> RenderedMail {
    RenderedMail {
        locale: Locale::FR,
        subject: "Bienvenue sur Facteur, Léa".into(),
        text: "Bonjour Léa,\n\nvotre compte est prêt.\n".into(),
        html: "<p>Bonjour Léa,</p><p>votre compte est prêt.</p>".into(),
    }
}

fn build(letterhead: &Letterhead) -> lettre::Message {
    let to = Recipient {
        email: Email::parse("lea@example.com").unwrap(),
        name: "Léa Martin".into(),
    };
    let template = Template::parse("welcome").unwrap();
    build_message(letterhead, MailRequestId::new(), &template, &to, welcome()).unwrap()
}

/// The top-level header lines of a formatted message, unfolded.
fn top_headers(message: &lettre::Message) -> Vec<String> {
    let text = String::from_utf8(message.formatted()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
    head.split("\r\n").map(str::to_string).collect()
}

#[test]
fn an_ed25519_key_is_published_as_k_ed25519_with_its_raw_public_key() {
    let dir = TempDir::new().unwrap();
    let signer = ed25519_signer(&dir);
    let public = BASE64.encode(ed25519_key().verifying_key().to_bytes());
    assert_eq!(
        signer.record(),
        &DkimRecord {
            domain: "facteur.example".into(),
            selector: "s1".into(),
            name: "s1._domainkey.facteur.example".into(),
            record: format!("v=DKIM1; k=ed25519; p={public}"),
        }
    );
}

#[test]
fn a_key_file_that_cannot_be_used_is_an_error_naming_the_key() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let encrypted = dir.path().join("encrypted.pem");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    for (file, says) in [
        (&missing, "cannot be read"),
        (&garbage, "holds no Ed25519 or RSA private key"),
        (&encrypted, "encrypted"),
    ] {
        let error = DkimSigner::load(&config(file)).unwrap_err();
        assert_eq!(error.key, "mailer.dkim.private_key_file");
        let line = error.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains(&file.display().to_string()), "{line}");
        assert!(line.contains(says), "{line}");
    }
}

#[test]
fn a_signed_message_signs_the_contract_s_headers_relaxed_with_one_content_type() {
    let dir = TempDir::new().unwrap();
    let message = build(&letterhead(Some(ed25519_signer(&dir))));
    let headers = top_headers(&message);
    let signature: Vec<&String> = headers
        .iter()
        .filter(|h| h.starts_with("DKIM-Signature:"))
        .collect();
    assert_eq!(signature.len(), 1, "{headers:#?}");
    for tag in [
        "v=1;",
        "a=ed25519-sha256;",
        "c=relaxed/relaxed;",
        "d=facteur.example;",
        "s=s1;",
        "h=from:to:subject:date:message-id:mime-version:content-type;",
    ] {
        assert!(signature[0].contains(tag), "{tag} in {}", signature[0]);
    }
    // Every signed header is there once, at the top level, the body's Content-Type included.
    for name in SIGNED_HEADERS {
        let found = headers
            .iter()
            .filter(|h| {
                h.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .count();
        assert_eq!(found, 1, "{name} in {headers:#?}");
    }
    let content_type = headers
        .iter()
        .find(|h| h.starts_with("Content-Type:"))
        .unwrap();
    assert!(
        content_type.contains("multipart/alternative"),
        "{content_type}"
    );
}

#[test]
fn without_a_key_the_message_is_unsigned() {
    let headers = top_headers(&build(&letterhead(None)));
    assert!(
        !headers.iter().any(|h| h.starts_with("DKIM-Signature:")),
        "{headers:#?}"
    );
}

/// The cost of signing, printed: `cargo test -p mailer --lib signing_cost -- --ignored
/// --nocapture` (add `--release` for figures worth quoting). Not a check: timings vary with
/// the machine.
#[test]
#[ignore = "a measurement, run by hand"]
fn signing_cost() {
    let dir = TempDir::new().unwrap();
    let mut cases = vec![
        ("unsigned", letterhead(None)),
        ("Ed25519", letterhead(Some(ed25519_signer(&dir)))),
    ];
    let rsa = dir.path().join("rsa.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa)
        .output()
        .is_ok_and(|o| o.status.success());
    if made {
        cases.push((
            "RSA 2048",
            letterhead(Some(DkimSigner::load(&config(&rsa)).unwrap())),
        ));
    }
    let rounds = 2_000;
    for (what, letterhead) in &cases {
        for _ in 0..100 {
            std::hint::black_box(build(letterhead).formatted());
        }
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(build(letterhead).formatted());
        }
        let each = started.elapsed() / rounds;
        println!("build and format one mail, {what}: {each:?}");
    }
}
