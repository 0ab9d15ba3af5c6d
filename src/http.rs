//! Outbound HTTP for every caller (model endpoints, alert sinks): one place
//! that builds reqwest clients, over rustls with the ring provider passed
//! explicitly, trusting the system's root certificates plus, optionally,
//! the roots of a PEM file (a TLS-inspecting proxy's). reqwest is built
//! without a default crypto provider, so a client built any other way would
//! panic on first use; build them here (a test checks that nothing else
//! does).

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A client builder with TLS set up: the system's roots and `extra_roots`.
pub fn client_builder(extra_roots: Option<&Path>) -> Result<reqwest::ClientBuilder, String> {
    let tls = tls_config(extra_roots)?;
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}

/// Redirects followed only within the first request's origin (scheme,
/// host and port), at most 5: a credential header or a request body is
/// never sent to another origin (reqwest drops `Authorization` across
/// origins, but not `api-key` or the body of a 307). A redirect elsewhere is
/// returned to the caller as the 3xx response it is.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if same && attempt.previous().len() <= 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// rustls with the ring provider and the roots above.
pub fn tls_config(extra: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = extra {
        for cert in extra_roots(path)? {
            roots.add(cert).map_err(|e| {
                format!(
                    "{} holds a certificate rustls cannot use as a root ({e})",
                    path.display()
                )
            })?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

/// The system's root certificates, read once. Unreadable ones are skipped;
/// a missing root then shows as "invalid peer certificate: UnknownIssuer".
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The certificates of a PEM bundle, with a message naming the file when it
/// cannot be read or holds none.
pub fn extra_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the CA file {} ({e}); it should be a PEM file of root certificates",
            path.display()
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} is not a PEM certificate bundle ({e:?}); it should hold -----BEGIN CERTIFICATE----- blocks",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate; it should hold -----BEGIN CERTIFICATE----- blocks",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_client_without_a_process_wide_provider() {
        // reqwest::Client::new() would panic here (no default provider).
        let client = client_builder(None).unwrap().build();
        assert!(client.is_ok());
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        assert!(
            client_builder(Some(&missing))
                .unwrap_err()
                .contains("none.pem")
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_builder(Some(&empty)).unwrap_err();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
    }

    #[test]
    fn only_this_module_builds_reqwest_clients() {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("src"), &mut files);
        walk(&root.join("tests"), &mut files);
        let me = root.join("src/http.rs");
        let banned = [
            "reqwest::Client::new",
            "reqwest::Client::builder",
            "reqwest::Client::default",
        ];
        for f in files.iter().filter(|f| **f != me) {
            let text = std::fs::read_to_string(f).unwrap();
            for b in banned {
                assert!(
                    !text.contains(b),
                    "{} uses {b}; build clients with crate::http::client_builder",
                    f.display()
                );
            }
        }
    }
}
