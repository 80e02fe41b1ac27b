//! The browser-facing security headers: a Content-Security-Policy that allows only the site's
//! own scripts and styles, no framing, no referrer, no MIME sniffing — on every response of
//! `mathia-local`'s site and of the emulated deployment's.

use serde_json::{Value, json};

use crate::{emulated::Stack, files::declare, helpers::TestApp};

/// Checks the headers every response must carry and answers its CSP.
fn secured(res: &reqwest::Response, what: &str) -> String {
    let h = res.headers();
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
    assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("no-referrer"), "{what}");
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{what}");
    csp
}

fn directive<'a>(csp: &'a str, name: &str) -> &'a str {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {csp}"))
}

#[tokio::test]
async fn every_local_response_carries_the_security_headers() {
    let t = TestApp::spawn_with(|c| c.ws_url = Some("wss://ws.example.test/prod".into())).await;
    for path in
        ["/", "/index.html", "/js/main.js", "/css/base.css", "/api/config", "/api/me", "/healthz", "/no/such/page"]
    {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        let csp = secured(&res, path);
        let connect = directive(&csp, "connect-src");
        assert!(connect.contains("'self'") && connect.contains("wss://ws.example.test"), "{path}: {connect}");
        assert!(!connect.contains("ws.example.test/prod"), "an origin, not a path: {connect}");
    }
    // Errors too: bad JSON, a wrong method.
    let res = t
        .http
        .post(t.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    secured(&res, "a 400");
    let res = t.post(None, "/api/config", json!({})).await;
    secured(&res, "a 405");
}

#[tokio::test]
async fn the_emulated_site_sends_them_too_with_its_websocket_and_file_origins() {
    let stack = Stack::start().await;
    let origin = |url: &str| reqwest::Url::parse(url).unwrap().origin().ascii_serialization();
    let ws = origin(&stack.ws_base);
    // Uploads PUT to presigned URLs and pictures load from them: their origin is allowed too.
    let ana = stack.register("Ana").await;
    let room = stack.create_room(&ana, "pics").await;
    let declared: Value = declare(&stack, &ana, room.id, "cat.png", 100).await.json().await.unwrap();
    let files = origin(declared["upload_url"].as_str().unwrap());
    for path in ["/", "/js/main.js", "/api/config", "/api/me", "/no/such/page"] {
        let res = stack.http.get(stack.url(path)).send().await.unwrap();
        let csp = secured(&res, path);
        let connect = directive(&csp, "connect-src");
        assert!(connect.contains(&ws) && connect.contains(&files), "{path}: {ws} and {files} in {connect}");
        assert!(directive(&csp, "img-src").contains(&files), "{path}: {csp}");
    }
}
