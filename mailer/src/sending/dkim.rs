//! DKIM signatures (RFC 6376, and RFC 8463 for Ed25519): the key of `mailer.dkim`, read and
//! parsed once at start, signs every message as it is built, and gives the DNS TXT record
//! that publishes its public half.
//!
//! lettre signs (its `dkim` feature); this module reads the PEM file, which lettre takes in
//! other shapes (raw base64 for Ed25519, PKCS#1 only for RSA), and derives the record.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::config::{ConfigError, DkimConfig};
use lettre::Message;
use lettre::error::Error as EmailError;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig as LettreDkim, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, MIME_VERSION_1_0};
use lettre::message::{Body, MessageBuilder, MultiPart};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;
use zeroize::Zeroizing;

/// The key that every error names.
const KEY_FILE: &str = "mailer.dkim.private_key_file";

/// The headers signed, as the contract lists them. Each is set on every message.
const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

/// RFC 8301: verifiers do not accept RSA keys shorter than this.
const RSA_MIN_BITS: usize = 1024;

/// The DNS TXT record that publishes the signing key: the body of `GET /dkim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DkimRecord {
    /// The signing domain (`d=` of every signature), `mailer.dkim.domain`.
    #[schema(example = "facteur.example")]
    pub domain: String,
    /// The key's selector (`s=`), `mailer.dkim.selector`.
    #[schema(example = "2026")]
    pub selector: String,
    /// Where the record is published: `{selector}._domainkey.{domain}`.
    #[schema(example = "2026._domainkey.facteur.example")]
    pub name: String,
    /// The TXT record's text: `v=DKIM1; k=ed25519; p=<base64 public key>` (`k=rsa` with the
    /// DER SubjectPublicKeyInfo of an RSA key).
    #[schema(example = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")]
    pub record: String,
}

/// Signs messages with the key of `mailer.dkim`; built once at start and shared.
pub struct DkimSigner {
    lettre: LettreDkim,
    record: DkimRecord,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // lettre's Debug would print the private key.
        f.debug_struct("DkimSigner")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads and parses `config.private_key_file`: an Ed25519 key in PKCS#8 PEM, or an RSA
    /// key in PKCS#8 or PKCS#1 PEM. A file that cannot be read or holds no such key is a
    /// configuration error naming `mailer.dkim.private_key_file`.
    pub fn load(config: &DkimConfig) -> Result<DkimSigner, ConfigError> {
        let path = config.private_key_file.display();
        let wrong = |what: String| ConfigError {
            key: KEY_FILE.into(),
            message: format!("{path} {what}"),
        };
        let pem = std::fs::read_to_string(&config.private_key_file)
            .map(Zeroizing::new)
            .map_err(|e| wrong(format!("cannot be read: {e}")))?;
        let (key, algorithm, public) = parse_key(&pem).map_err(wrong)?;
        let record = DkimRecord {
            domain: config.domain.clone(),
            selector: config.selector.clone(),
            name: format!("{}._domainkey.{}", config.selector, config.domain),
            record: format!("v=DKIM1; k={algorithm}; p={public}"),
        };
        let lettre = LettreDkim::new(
            config.selector.clone(),
            config.domain.clone(),
            key,
            SIGNED_HEADERS
                .iter()
                .map(|name| HeaderName::new_from_ascii_str(name))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(DkimSigner { lettre, record })
    }

    /// The TXT record to publish.
    pub fn record(&self) -> &DkimRecord {
        &self.record
    }

    /// Builds the message of `builder` with `body` as its content, and signs it.
    ///
    /// lettre signs the headers it holds for the message itself, and a multipart body's
    /// `Content-Type` is a header of the body to lettre, written out after the message's own:
    /// it would be named in `h=` yet hashed as absent, and no verifier would agree. So the
    /// body goes in as the bytes lettre encodes it to, under its `Content-Type` set as a
    /// header of the message. Those bytes are 7-bit: lettre encodes each part's text as
    /// quoted-printable or base64 unless it is short-lined ASCII already.
    pub fn build_signed(
        &self,
        builder: MessageBuilder,
        body: MultiPart,
    ) -> Result<Message, EmailError> {
        let content_type = body.headers().get::<ContentType>();
        let mut bytes = body.formatted();
        let headers_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| at + 4);
        bytes.drain(..headers_end);
        let mut builder = builder.header(MIME_VERSION_1_0);
        if let Some(content_type) = content_type {
            builder = builder.header(content_type);
        }
        let mut message = builder.body(Body::dangerous_pre_encoded(
            bytes,
            ContentTransferEncoding::SevenBit,
        ))?;
        message.sign(&self.lettre);
        Ok(message)
    }
}

/// The key in `pem` as lettre takes it, its `k=` and its public half as `p=` wants it; or
/// what is wrong, as the end of a sentence that begins with the file's path.
fn parse_key(pem: &str) -> Result<(DkimSigningKey, &'static str, String), String> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "holds an encrypted key: the mailer reads unencrypted PEM (keep the file readable by the mailer only)".into(),
        );
    }
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        // lettre takes an Ed25519 key as the base64 of its 32 secret bytes.
        let secret = Zeroizing::new(BASE64.encode(key.to_bytes()));
        let signing = DkimSigningKey::new(&secret, DkimSigningAlgorithm::Ed25519)
            .map_err(|e| format!("holds an Ed25519 key lettre refuses: {e}"))?;
        return Ok((
            signing,
            "ed25519",
            BASE64.encode(key.verifying_key().to_bytes()),
        ));
    }
    let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            "holds no Ed25519 or RSA private key in PEM (PKCS#8 \"BEGIN PRIVATE KEY\", as `openssl genpkey -algorithm ed25519` writes it, or PKCS#1 \"BEGIN RSA PRIVATE KEY\")".to_string()
        })?;
    let bits = rsa.n().bits();
    if bits < RSA_MIN_BITS {
        return Err(format!(
            "holds a {bits}-bit RSA key: verifiers ignore RSA keys under {RSA_MIN_BITS} bits (use Ed25519, or RSA of 2048 bits)"
        ));
    }
    let public = rsa
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| format!("holds an RSA key whose public half cannot be encoded: {e}"))?;
    // lettre takes an RSA key as PKCS#1 PEM only.
    let pkcs1 = rsa
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| format!("holds an RSA key that cannot be re-encoded: {e}"))?;
    let signing = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|e| format!("holds an RSA key lettre refuses: {e}"))?;
    Ok((signing, "rsa", BASE64.encode(public.as_bytes())))
}

#[cfg(test)]
mod tests;
