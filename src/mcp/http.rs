//! MCP over streamable HTTP (`apimedic mcp --http ADDR`): rmcp's
//! `StreamableHttpService` behind a small hyper server that binds loopback
//! unless told otherwise, refuses a non-loopback address without a bearer
//! token, checks `Host` and `Origin` (DNS rebinding), checks the token in
//! constant time, caps connections and times out slow headers.

use super::Server;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

/// Most connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// A client that has not sent its request headers by then is dropped.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the HTTP transport listens.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// Required bearer token (`Authorization: Bearer ...`), if any.
    pub token: Option<String>,
    /// Browser origins allowed besides none (requests without `Origin`, as
    /// sent by non-browser clients, always pass).
    pub allowed_origins: Vec<String>,
}

/// Checks the options before binding: a non-loopback address needs a token.
pub fn check_options(opts: &HttpOptions) -> Result<(), String> {
    if !opts.addr.ip().is_loopback() && opts.token.is_none() {
        return Err(format!(
            "--http {} is not a loopback address: set a bearer token (APIMEDIC_MCP_TOKEN) so \
             only clients that know it are served",
            opts.addr
        ));
    }
    if opts.token.as_deref().is_some_and(|t| t.trim().len() < 16) {
        return Err("the MCP bearer token must be at least 16 characters".to_string());
    }
    Ok(())
}

type Body = BoxBody<Bytes, Infallible>;

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request carries the bearer token (or none is required).
pub fn authorised(headers: &hyper::HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()))
}

/// Serves MCP at `http://ADDR/mcp` until `shutdown` completes. Prints the
/// address it bound (port 0 picks a free one) to stderr.
pub async fn serve_http(
    server: Server,
    opts: HttpOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    check_options(&opts).map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.addr))?;
    let bound = listener.local_addr()?;
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        format!("localhost:{}", bound.port()),
        format!("127.0.0.1:{}", bound.port()),
        format!("[::1]:{}", bound.port()),
    ];
    if !bound.ip().is_loopback() {
        hosts.push(bound.ip().to_string());
        hosts.push(bound.to_string());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(opts.allowed_origins.clone())
        .enforce_origin_validation();
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token: Option<Arc<str>> = opts.token.as_deref().map(Arc::from);
    eprintln!("apimedic mcp: serving MCP at http://{bound}/mcp");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p?,
        };
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("apimedic mcp: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mcp = mcp.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: Request<Incoming>| {
                let mut mcp = mcp.clone();
                let token = token.clone();
                async move {
                    if req.uri().path() != "/mcp" {
                        return Ok::<_, Infallible>(plain(
                            StatusCode::NOT_FOUND,
                            "apimedic serves MCP at /mcp\n",
                        ));
                    }
                    if !authorised(req.headers(), token.as_deref()) {
                        let mut r = plain(StatusCode::UNAUTHORIZED, "bearer token required\n");
                        r.headers_mut().insert(
                            hyper::header::WWW_AUTHENTICATE,
                            hyper::header::HeaderValue::from_static("Bearer"),
                        );
                        return Ok(r);
                    }
                    mcp.call(req).await
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!("mcp http connection: {e}");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(addr: &str, token: Option<&str>) -> HttpOptions {
        HttpOptions {
            addr: addr.parse().unwrap(),
            token: token.map(str::to_string),
            allowed_origins: vec![],
        }
    }

    #[test]
    fn non_loopback_needs_a_long_token() {
        assert!(check_options(&opts("127.0.0.1:0", None)).is_ok());
        assert!(check_options(&opts("[::1]:0", None)).is_ok());
        let e = check_options(&opts("0.0.0.0:8080", None)).unwrap_err();
        assert!(e.contains("APIMEDIC_MCP_TOKEN"), "{e}");
        assert!(check_options(&opts("0.0.0.0:8080", Some("short"))).is_err());
        assert!(check_options(&opts("0.0.0.0:8080", Some("0123456789abcdef"))).is_ok());
    }

    #[test]
    fn bearer_token_is_checked_exactly() {
        let mut h = hyper::HeaderMap::new();
        assert!(authorised(&h, None));
        assert!(!authorised(&h, Some("0123456789abcdef")));
        h.insert(
            hyper::header::AUTHORIZATION,
            "Bearer 0123456789abcdef".parse().unwrap(),
        );
        assert!(authorised(&h, Some("0123456789abcdef")));
        assert!(!authorised(&h, Some("0123456789abcdeX")));
        assert!(!authorised(&h, Some("0123456789abcdef0")));
    }
}
