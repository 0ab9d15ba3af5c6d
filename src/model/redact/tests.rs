//! The redaction against a corpus of real secret formats (the vendors'
//! documented example values), each in the contexts it is found in: a log
//! URL, a header dump, a policy, a connection string, JSON. Each case
//! names the secret that must vanish and the text around it that must stay.

use super::*;

/// (text, secret that must not survive, text that must survive).
const CORPUS: &[(&str, &str, &str)] = &[
    // Authorization schemes: the credential goes, the scheme word stays.
    (
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA",
        "Authorization: Basic ",
    ),
    (
        "\"Authorization\": \"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\"",
        "QWxhZGRpbjpvcGVu",
        "Basic",
    ),
    (
        "authorization=Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV",
        "authorization=Bearer ",
    ),
    (
        "Authorization: SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2Fq&sig=H1Tv2Yf%2BKx8JYk0hM3%2FvH2dWkq8%3D&se=1735689600&skn=RootManageSharedAccessKey",
        "H1Tv2Yf",
        "SharedAccessSignature",
    ),
    (
        "Authorization: SharedAccessSignature integration&202601011200&Xb3k9qM2pL0vW8sD1fG6hJ4kL7zX5cV2bN8mQ1wE3rT9yU0iO==",
        "Xb3k9qM2pL0vW8sD1fG6hJ4k",
        "SharedAccessSignature",
    ),
    (
        "Authorization: SharedKey myaccount:ctzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA08=",
        "ctzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA08",
        "SharedKey",
    ),
    (
        "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT\nAuthorization: SharedKeyLite myaccount:Z5043vY9MesKNh0PNtksNc9nbXSSqGHueE00JdjidOQ=",
        "Z5043vY9MesKNh0PNtksNc9nbXSSqGHueE00JdjidOQ",
        "x-ms-date",
    ),
    (
        "Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "YWxhZGRpbjpvcGVuc2VzYW1l",
        "Proxy-Authorization",
    ),
    // Outside a header, and URL-encoded.
    (
        "GET /orders?access_token=Bearer%20eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln&x=1",
        "eyJhbGciOiJSUzI1NiJ9",
        "/orders?",
    ),
    (
        "header dump: Bearer%20mF_9.B5f-4.1JqM",
        "mF_9.B5f-4.1JqM",
        "header dump",
    ),
    (
        "token_type=bearer&t=Bearer+AbCdEf0123456789xyz",
        "AbCdEf0123456789xyz",
        "token_type",
    ),
    (
        "Authorization%3A%20Bearer%20abcDEF123456ghiJKL789",
        "abcDEF123456ghiJKL789",
        "Authorization",
    ),
    // URL passwords.
    (
        "backend https://svc-user:S3cr3t!pw@orders.internal/api",
        "S3cr3t!pw",
        "https://svc-user:",
    ),
    (
        "redis://:p4ssw0rdRedis@cache.redis.cache.windows.net:6380",
        "p4ssw0rdRedis",
        "redis://",
    ),
    (
        "url=https%3A%2F%2Fadmin%3Ahunter2xyz%40inv.internal%2F",
        "hunter2xyz",
        "url=",
    ),
    // Private keys.
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\nnext line",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "next line",
    ),
    (
        "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"a@b.iam\"}",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj",
        "client_email",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n(cut)",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "(cut)",
    ),
    (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----",
        "MIIFHDBOBgkqhkiG9w0BBQ0w",
        "",
    ),
    // Labelled values: passwords by any name.
    (
        "mysql: host=db;user=app;passwd=Tr0ub4dor&3;port=3306",
        "Tr0ub4dor",
        "port=3306",
    ),
    (
        "ftp login pass=correcthorse user=bob",
        "correcthorse",
        "user=bob",
    ),
    (
        "Server=tcp:x.database.windows.net,1433;User ID=app;Password=P@ssw0rd2024;Encrypt=True",
        "P@ssw0rd2024",
        "Encrypt=True",
    ),
    ("Data Source=x;Pwd=Zx9!qq77;", "Zx9!qq77", "Data Source=x"),
    (
        "<authentication-basic username=\"svc\" password=\"Winter2026!\" />",
        "Winter2026!",
        "username=\"svc\"",
    ),
    (
        "{\"password\": \"hunter22\", \"user\": \"x\"}",
        "hunter22",
        "\"user\"",
    ),
    // Azure keys and connection strings.
    (
        "DefaultEndpointsProtocol=https;AccountName=st1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6",
        "AccountName=st1",
    ),
    (
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=zR2yG7mQ0vL9kX4pT1sD8fH3jB6nC5wE0aU2iO7eY9g=",
        "zR2yG7mQ0vL9kX4pT1sD8fH3jB6nC5wE0aU2iO7eY9g",
        "SharedAccessKeyName",
    ),
    (
        "https://st1.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&sig=9cs%2FhLc5Yw%2Bq2eN2mNq5b1ZZ%2FkJ0aXk%3D",
        "9cs%2FhLc5Yw",
        "sv=2022-11-02",
    ),
    (
        "GET https://gw.contoso.net/orders?subscription-key=0123456789abcdef0123456789abcdef&x=1",
        "0123456789abcdef0123456789abcdef",
        "&x=1",
    ),
    (
        "Ocp-Apim-Subscription-Key: 4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f",
        "4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f",
        "Ocp-Apim-Subscription-Key",
    ),
    (
        "<set-header name=\"Ocp-Apim-Subscription-Key\" exists-action=\"override\">\n  <value>a1b2c3d4e5f60718293a4b5c6d7e8f90</value>\n</set-header>",
        "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "exists-action",
    ),
    (
        "<set-query-parameter name=\"code\" exists-action=\"override\"><value>x</value></set-query-parameter> https://fn.azurewebsites.net/api/h?code=aBcD1234efGH5678ijKL==",
        "aBcD1234efGH5678ijKL",
        "fn.azurewebsites.net",
    ),
    (
        "client_secret=Q~8sK.3vN_aB-cD4eF5gH6iJ7kL8mN9oP0qR1sT2",
        "Q~8sK.3vN_aB-cD4eF5gH6iJ7kL8mN9oP0qR1sT2",
        "client_secret=",
    ),
    // Tokens with well-known prefixes, unlabelled.
    (
        "aws creds AKIAIOSFODNN7EXAMPLE in a log",
        "AKIAIOSFODNN7EXAMPLE",
        "in a log",
    ),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG",
        "aws_secret_access_key",
    ),
    (
        "export GITHUB_TOKEN ghp_16C7e42F292c6912E7710c838347Ae178B4a now",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "now",
    ),
    (
        "slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-1234567890",
        "slack",
    ),
    (
        "OPENAI sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z done",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "done",
    ),
    (
        "maps AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
        "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
        "maps",
    ),
    (
        "hook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
        "hooks.slack.com",
    ),
    (
        "jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9. (alg none)",
        "eyJzdWIiOiJhZG1pbiJ9",
        "(alg none)",
    ),
];

/// Text that must come out unchanged: prose, ids, references, numbers.
const CLEAN: &[&str] = &[
    "5xx spike on orders-api/get-order: 40% [d825790140885894]",
    "Basic tier: 1 unit; upgrade to Standard for more capacity",
    "token budget reached; 800 tokens used",
    "Bearer tokens are validated by validate-jwt",
    "ResponseCode: 503 BackendResponseCode: 503",
    "https://orders-app.internal/api/orders?page=2&sort=asc",
    "<set-header name=\"Ocp-Apim-Subscription-Key\" exists-action=\"override\"><value>{{backend-key}}</value></set-header>",
    "<set-header name=\"Authorization\" exists-action=\"override\"><value>@(\"Bearer \" + (string)context.Variables[\"token\"])</value></set-header>",
    "the password: null; key rotation is due",
    "sig=[SECRET-1] already redacted",
    "LastErrorReason: BackendConnectionFailure; code: ClientConnectionFailure",
    "bypass=true; compass=north",
];

#[test]
fn the_corpus_of_real_secret_formats_is_redacted_and_context_kept() {
    let mut failures = Vec::new();
    for (text, secret, keep) in CORPUS {
        let out = scrub(text);
        if out.contains(secret) || !out.contains(keep) || !out.contains("[SECRET-") {
            failures.push(format!("{text}\n  -> {out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn prose_ids_and_references_are_not_secrets() {
    for text in CLEAN {
        assert_eq!(scrub(text), *text);
    }
}

#[test]
fn secrets_are_removed_and_never_restored() {
    let mut r = Redactor::new(false);
    let text = "GET https://gw.contoso.net/orders?subscription-key=abcd1234ef&x=1 \
                Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl \
                Ocp-Apim-Subscription-Key: 0123456789abcdef";
    let out = r.redact(text);
    for secret in ["abcd1234ef", "eyJhbGci", "0123456789abcdef"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    assert!(
        out.contains("gw.contoso.net"),
        "hosts stay without --mask: {out}"
    );
    assert_eq!(r.restore(&out), out, "secrets are not put back");
    assert_eq!(r.counts().0, 3, "{out}");
    // The same secret gets the same number; redacting again changes nothing.
    let again = r.redact("key: x subscription-key=abcd1234ef");
    let placeholder = again.trim_start_matches("key: x subscription-key=");
    assert!(
        out.contains(&format!("subscription-key={placeholder}")),
        "{again} / {out}"
    );
    assert_eq!(r.redact(&out), out);
}

#[test]
fn masking_hides_hosts_and_ips_reversibly() {
    let mut r = Redactor::new(true);
    let out = r.redact(
        "backend https://10.1.2.4/api and orders-app.kindsea.azurecontainerapps.io, file orders-api.xml",
    );
    assert!(
        !out.contains("10.1.2.4") && !out.contains("kindsea"),
        "{out}"
    );
    assert!(
        out.contains("orders-api.xml"),
        "file names are not hosts: {out}"
    );
    assert_eq!(
        r.restore("the NSG blocks [IP-1] "),
        "the NSG blocks 10.1.2.4 "
    );
    assert_eq!(r.redact("10.1.2.4"), "[IP-1]");
}

#[test]
fn json_documents_and_model_values_are_scrubbed_in_every_string() {
    let mut v = serde_json::json!({"findings": [{"summary": "x", "evidence": ["GET /a?sig=AbCdEf123456"]}],
        "n": 3, "password": "kept-as-key-name"});
    scrub_value(&mut v);
    assert_eq!(v["findings"][0]["evidence"][0], "GET /a?sig=[SECRET-1]");
    assert_eq!(
        v["password"], "kept-as-key-name",
        "a value without a label is not a secret"
    );
    let mut f = crate::model::Finding::new(
        crate::model::FindingKind::ErrorSpike,
        crate::model::Severity::High,
        crate::model::Subject::backend("https://u:pw123456@inv.internal"),
        "backend https://u:pw123456@inv.internal fails",
    );
    let rec = crate::model::RequestRecord {
        url: Some("https://gw/x?subscription-key=0123456789abcdef".into()),
        ..Default::default()
    };
    f.evidence.push(crate::model::Evidence {
        records: vec![rec],
        ..crate::model::Evidence::text("a request")
    });
    let id = f.id.clone();
    f.scrub();
    let all = serde_json::to_string(&f).unwrap();
    assert!(
        !all.contains("pw123456") && !all.contains("0123456789abcdef"),
        "{all}"
    );
    assert_eq!(f.id, id, "ids are fingerprints, not text");
    // A NaN cannot make the JSON round trip: the field walk still scrubs.
    f.confidence = f64::NAN;
    f.summary = "pass=zzzz9999".into();
    f.scrub();
    assert_eq!(f.summary, "pass=[SECRET-1]");
}
