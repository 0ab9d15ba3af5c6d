//! The client-certificate sign-in without OpenSSL: the certificate and its
//! RSA private key are read from a PEM file, and each token request carries
//! a fresh client assertion (a JWT signed RS256 with ring, naming the
//! certificate by its SHA-1 and SHA-256 thumbprints, `x5t` and `x5t#S256`),
//! the form Microsoft Entra ID documents for certificate credentials.
//! `azure_identity`'s `ClientAssertionCredential` sends it and caches the
//! token. PKCS#12 (`.pfx`) files are refused with the command that converts
//! them.

use azure_core::http::ClientMethodOptions;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes signed client assertions for one certificate.
pub struct CertificateAssertion {
    key: Arc<ring::signature::RsaKeyPair>,
    /// base64url SHA-1 and SHA-256 of the leaf certificate's DER.
    x5t: String,
    x5t_s256: String,
    /// base64 (standard) DER of each certificate, leaf first, when the chain is sent.
    x5c: Option<Vec<String>>,
    client_id: String,
    audience: String,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("x5t", &self.x5t)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    /// Reads `path` (PEM: certificate(s) and an RSA private key, PKCS#8 or
    /// PKCS#1). `audience` is the token endpoint URL.
    pub fn from_pem_file(
        path: &Path,
        client_id: &str,
        audience: &str,
        send_chain: bool,
    ) -> Result<CertificateAssertion, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the certificate file {} ({e})", path.display()))?;
        Self::from_pem(&bytes, client_id, audience, send_chain)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_pem(
        pem: &[u8],
        client_id: &str,
        audience: &str,
        send_chain: bool,
    ) -> Result<CertificateAssertion, String> {
        if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(
                "not a PEM file (a .pfx/.p12 converts with `openssl pkcs12 -in cert.pfx \
                        -out cert.pem -nodes`)"
                    .into(),
            );
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("holds a malformed certificate ({e:?})"))?;
        let leaf = certs
            .first()
            .ok_or("holds no -----BEGIN CERTIFICATE----- block")?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            "holds no unencrypted private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA \
             PRIVATE KEY-----); an encrypted key decrypts with `openssl pkey -in key.pem -out \
             plain.pem`"
                .to_string()
        })?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => {
                ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
            }
            PrivateKeyDer::Pkcs1(k) => ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(
                "the private key is not RSA; Entra ID certificate credentials here need an RSA key"
                    .into(),
            ),
        }
        .map_err(|e| format!("the private key cannot sign ({e})"))?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf.as_ref());
        let sha256 = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        Ok(CertificateAssertion {
            key: Arc::new(key),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
            x5c: send_chain.then(|| certs.iter().map(|c| STANDARD.encode(c.as_ref())).collect()),
            client_id: client_id.to_string(),
            audience: audience.to_string(),
        })
    }

    /// A signed assertion valid for ten minutes from `now` (seconds).
    pub fn assertion(&self, now: u64) -> Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| "no random numbers for the assertion id".to_string())?;
        let mut header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        });
        if let Some(chain) = &self.x5c {
            header["x5c"] = serde_json::json!(chain);
        }
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "the private key could not sign the assertion".to_string())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.assertion(now).map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e)
        })
    }
}

/// base64url without padding (JWT segments); padding and the standard
/// alphabet are tolerated.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    URL_SAFE_NO_PAD.decode(s).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s)
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_pem() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/azure/tls");
        let mut pem = std::fs::read(dir.join("client.crt")).unwrap();
        pem.extend(std::fs::read(dir.join("client.key")).unwrap());
        pem
    }

    #[test]
    fn the_assertion_is_a_verifiable_rs256_jwt() {
        let a = CertificateAssertion::from_pem(
            &test_pem(),
            "app-1",
            "https://127.0.0.1/t/oauth2/v2.0/token",
            false,
        )
        .unwrap();
        let jwt = a.assertion(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"].as_str().unwrap().len(), 27);
        assert!(header.get("x5c").is_none());
        let claims: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "app-1");
        assert_eq!(claims["sub"], "app-1");
        assert_eq!(claims["exp"], 1_700_000_600u64);
        assert_eq!(claims["aud"], "https://127.0.0.1/t/oauth2/v2.0/token");
        // The signature verifies with the key's public half.
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            a.key.public().as_ref().to_vec(),
        );
        let sig = base64url_decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        // A tampered claim does not.
        assert!(
            public
                .verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &sig)
                .is_err()
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = CertificateAssertion::from_pem(b"\x30\x82binary pfx", "a", "b", false).unwrap_err();
        assert!(e.contains("openssl pkcs12"), "{e}");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/azure/tls");
        let only_cert = std::fs::read(dir.join("client.crt")).unwrap();
        let e = CertificateAssertion::from_pem(&only_cert, "a", "b", false).unwrap_err();
        assert!(e.contains("private key"), "{e}");
        let e = CertificateAssertion::from_pem_file(&dir.join("missing.pem"), "a", "b", false)
            .unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
        let with_chain = CertificateAssertion::from_pem(&test_pem(), "a", "b", true).unwrap();
        let jwt = with_chain.assertion(0).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&base64url_decode(jwt.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
    }
}
