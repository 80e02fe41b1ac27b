//! The browser-facing security headers, on every response of the site (`static/`, `/api`,
//! `/healthz`, the WebSocket handshake), here and in the emulated deployment; CloudFront sends
//! the same from `infra/template.yaml`'s ResponseHeadersPolicy.
//!
//! The policy allows only the site's own scripts and styles (the client has no inline script,
//! style attribute or event handler), pictures from the site, `data:`/`blob:` and the files'
//! origin (presigned downloads), connections to the site, its WebSocket and the files' origin
//! (presigned uploads); no plugins, no framing, no `<base>`, forms only to the site.

use axum::{
    Router,
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
};

/// The origin (`scheme://host[:port]`) of a URL, for a CSP source list.
pub fn origin(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The site's Content-Security-Policy. `self_ws` is the site's own host as the WebSocket
/// schemes (older browsers do not count `ws:` to the same host as `'self'`).
pub fn content_security_policy(ws_origin: Option<&str>, files_origin: Option<&str>, self_ws: &str) -> String {
    let files = files_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let ws = ws_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{files}; \
         font-src 'self'; media-src 'self'; connect-src 'self'{self_ws}{ws}{files}; object-src 'none'; \
         worker-src 'self'; frame-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// `ws://host wss://host` for the request's own host, when it reads like one.
fn own_ws(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let plausible =
        !host.is_empty() && host.len() <= 255 && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if plausible { format!(" ws://{host} wss://{host}") } else { String::new() }
}

/// Adds the headers to every response of `router`.
pub fn secure(router: Router, ws_url: Option<&str>, files_origin: Option<String>) -> Router {
    let ws_origin = ws_url.and_then(origin);
    router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let (ws_origin, files_origin) = (ws_origin.clone(), files_origin.clone());
        async move {
            let self_ws = own_ws(req.headers());
            let mut res = next.run(req).await;
            let csp = content_security_policy(ws_origin.as_deref(), files_origin.as_deref(), &self_ws);
            let h = res.headers_mut();
            if let Ok(csp) = HeaderValue::from_str(&csp) {
                h.insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
            res
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_drop_paths_and_queries() {
        assert_eq!(
            origin("wss://abc.execute-api.eu-west-1.amazonaws.com/prod").as_deref(),
            Some("wss://abc.execute-api.eu-west-1.amazonaws.com")
        );
        assert_eq!(origin("http://127.0.0.1:4566/bucket/key?X-Amz=1").as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(origin("not a url"), None);
    }

    #[test]
    fn a_hostile_host_header_cannot_add_directives() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("evil.test; script-src *"));
        assert_eq!(own_ws(&h), "");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert_eq!(own_ws(&h), " ws://127.0.0.1:3000 wss://127.0.0.1:3000");
    }
}
