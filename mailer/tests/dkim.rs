//! DKIM: with `mailer.dkim` set, the real binary signs every mail it hands to SMTP, and
//! dkimpy (PyPI, pinned in tests/dkim/requirements.txt) verifies the signature against the
//! TXT record that `GET /dkim` gives; a tampered copy fails the same check. Keys are made by
//! `openssl genpkey` in each test, for that test only.

use crate::common::{MailerProcess, mail_request, start_refused};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use testkit::smtp::{Mail, SmtpSink};

const DOMAIN: &str = "facteur.test";
const SELECTOR: &str = "t2026";

/// The verifier's Python, when tests/dkim/.venv holds dkimpy and PyNaCl; otherwise the kit's
/// skip rule for `test`.
fn verifier(test: &str) -> Option<PathBuf> {
    crate::common::python_peer(test, "dkim", "import dkim, nacl")
}

/// A new private key in `dir`, made by `openssl genpkey` with `args`.
fn openssl_key(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(file);
    let status = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl genpkey {args:?}");
    path
}

fn ed25519_key(dir: &Path) -> PathBuf {
    openssl_key(dir, "ed25519.pem", &["-algorithm", "ed25519"])
}

fn rsa_key(dir: &Path) -> PathBuf {
    openssl_key(
        dir,
        "rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )
}

/// The real binary sending to `smtp`, signing with `key` when given.
async fn start(smtp: &SmtpSink, key: Option<&Path>) -> MailerProcess {
    let port = smtp.port().to_string();
    let key = key.map(|k| k.display().to_string());
    let mut env = vec![
        ("FACTEUR_MAILER__SMTP__HOST", "127.0.0.1"),
        ("FACTEUR_MAILER__SMTP__PORT", port.as_str()),
        ("FACTEUR_MAILER__SMTP__TLS", "none"),
    ];
    if let Some(key) = &key {
        env.extend([
            ("FACTEUR_MAILER__DKIM__DOMAIN", DOMAIN),
            ("FACTEUR_MAILER__DKIM__SELECTOR", SELECTOR),
            ("FACTEUR_MAILER__DKIM__PRIVATE_KEY_FILE", key.as_str()),
        ]);
    }
    MailerProcess::start(&env).await
}

async fn get_dkim(mailer: &MailerProcess, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}/dkim", mailer.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Sends one welcome mail to a recipient whose name needs encoded words (so folded and
/// encoded headers are signed too) and returns it as the SMTP server received it.
async fn one_mail(mailer: &MailerProcess, smtp: &SmtpSink) -> Mail {
    let mut request = mail_request("welcome", "fr");
    request["to"]["name"] = "Léa Ødegård-Martin, née Lovelace".into();
    let posted = reqwest::Client::new()
        .post(format!("{}/mails", mailer.base))
        .bearer_auth(&mailer.token)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 202);
    let mails = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1, "one mail arrives");
    mails.into_iter().next().unwrap()
}

/// What dkimpy says of `raw` with `record` published at `name`: `pass`, or `fail: …`.
fn verify(python: &Path, name: &str, record: &str, raw: &str) -> String {
    use std::io::Write as _;
    let script = testkit::node::workspace().join("tests/dkim/verify.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args([name, record])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the verifier runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        said == "pass" || said.starts_with("fail"),
        "the verifier broke: {said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    said
}

/// `raw` with one character of its body changed (the brand's initial, in the HTML part's
/// footer).
fn tamper_body(raw: &str) -> String {
    let body = raw.find("\r\n\r\n").expect("a header section");
    let at = raw.rfind("Facteur").expect("the brand in the body");
    assert!(at > body, "the brand is in the body:\n{raw}");
    format!("{}facteur{}", &raw[..at], &raw[at + "Facteur".len()..])
}

/// `raw` with another subject.
fn tamper_subject(raw: &str) -> String {
    let start = raw.find("\r\nSubject:").expect("a Subject header") + 2;
    let end = start + raw[start..].find("\r\n").unwrap();
    format!("{}Subject: Votre facture{}", &raw[..start], &raw[end..])
}

/// Sends one mail signed with `key` and checks it end to end: the record `GET /dkim` gives,
/// the signature's tags, dkimpy's pass, and its fail on a tampered body and subject.
async fn signed_mail_verifies(test: &str, key: &Path, k: &str, a: &str) {
    let Some(python) = verifier(test) else {
        return;
    };
    let smtp = SmtpSink::start();
    let mailer = start(&smtp, Some(key)).await;

    let (status, record) = get_dkim(&mailer, Some(&mailer.token)).await;
    let mail = one_mail(&mailer, &smtp).await;

    assert_eq!(status, 200, "{record}");
    let name = format!("{SELECTOR}._domainkey.{DOMAIN}");
    assert_eq!(record["domain"], DOMAIN);
    assert_eq!(record["selector"], SELECTOR);
    assert_eq!(record["name"], name.as_str());
    let txt = record["record"].as_str().unwrap();
    assert!(txt.starts_with(&format!("v=DKIM1; k={k}; p=")), "{txt}");
    let signature = mail.header("DKIM-Signature").expect("a DKIM-Signature");
    let signature: String = signature.split_whitespace().collect();
    for tag in [
        format!("a={a}"),
        "c=relaxed/relaxed".into(),
        format!("d={DOMAIN}"),
        format!("s={SELECTOR}"),
        "h=from:to:subject:date:message-id:mime-version:content-type".into(),
    ] {
        assert!(signature.contains(&tag), "{tag} in {signature}");
    }
    assert_eq!(verify(&python, &name, txt, &mail.raw), "pass");
    for (what, tampered) in [
        ("body", tamper_body(&mail.raw)),
        ("subject", tamper_subject(&mail.raw)),
    ] {
        let said = verify(&python, &name, txt, &tampered);
        assert!(said.starts_with("fail"), "a tampered {what}: {said}");
    }
    // The same mail under another domain's name finds no key.
    let elsewhere = format!("{SELECTOR}._domainkey.example.org");
    assert!(verify(&python, &elsewhere, txt, &mail.raw).starts_with("fail"));
}

#[tokio::test]
async fn a_mail_signed_with_an_ed25519_key_verifies_and_a_tampered_copy_does_not() {
    let dir = TempDir::new().unwrap();
    signed_mail_verifies(
        "a_mail_signed_with_an_ed25519_key_verifies_and_a_tampered_copy_does_not",
        &ed25519_key(dir.path()),
        "ed25519",
        "ed25519-sha256",
    )
    .await;
}

#[tokio::test]
async fn a_mail_signed_with_an_rsa_key_verifies_and_a_tampered_copy_does_not() {
    let dir = TempDir::new().unwrap();
    signed_mail_verifies(
        "a_mail_signed_with_an_rsa_key_verifies_and_a_tampered_copy_does_not",
        &rsa_key(dir.path()),
        "rsa",
        "rsa-sha256",
    )
    .await;
}

#[tokio::test]
async fn get_dkim_needs_the_token_and_is_404_when_mails_are_not_signed() {
    let dir = TempDir::new().unwrap();
    let smtp = SmtpSink::start();
    let signing = start(&smtp, Some(&ed25519_key(dir.path()))).await;
    let unsigned = start(&smtp, None).await;

    let (without_token, refused) = get_dkim(&signing, None).await;
    let (off, missing) = get_dkim(&unsigned, Some(&unsigned.token)).await;

    assert_eq!(without_token, 401, "{refused}");
    assert_eq!(refused["error"], "unauthorized", "{refused}");
    assert_eq!(off, 404, "{missing}");
    assert_eq!(missing["error"], "not_found", "{missing}");
    assert!(
        missing["message"].as_str().unwrap().contains("mailer.dkim"),
        "{missing}"
    );
    assert!(missing["details"].is_object(), "{missing}");
}

#[tokio::test]
async fn a_key_that_cannot_be_read_or_parsed_stops_the_start_naming_the_key() {
    let dir = TempDir::new().unwrap();
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "this is no key\n").unwrap();
    let unreadable = dir.path().join("unreadable");
    std::fs::create_dir(&unreadable).unwrap();
    let cases = [
        ("a missing file", dir.path().join("missing.pem")),
        ("a folder", unreadable),
        ("text without a key", not_a_key),
        (
            "a key of another kind (EC P-256)",
            openssl_key(
                dir.path(),
                "p256.pem",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
        ),
    ];
    for (what, key) in cases {
        let (code, said) = start_refused(&[
            ("FACTEUR_MAILER__DKIM__DOMAIN", DOMAIN.as_ref()),
            ("FACTEUR_MAILER__DKIM__SELECTOR", SELECTOR.as_ref()),
            ("FACTEUR_MAILER__DKIM__PRIVATE_KEY_FILE", key.as_os_str()),
        ])
        .await;
        assert_eq!(code, Some(2), "{what}: {said}");
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: one line, not {said}");
        assert!(
            lines[0].starts_with("invalid configuration: mailer.dkim.private_key_file: "),
            "{what}: {said}"
        );
        assert!(
            lines[0].contains(&key.display().to_string()),
            "{what}: {said}"
        );
    }
}
