//! The OpenAPI document is generated from the handlers and matches the router: every
//! documented operation is routed, and every endpoint of docs/protocol.md that the router
//! serves is documented.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{emulator::repo_root, helpers::TestApp};

/// `(METHOD, path)` pairs named in docs/protocol.md's HTTP table.
fn protocol_endpoints() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(repo_root().join("docs/protocol.md")).unwrap();
    let mut out = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or("");
        let (mut method, mut path) = (String::new(), String::new());
        for code in cell.split('`').skip(1).step_by(2) {
            let code = code.split('?').next().unwrap().trim();
            let mut words = code.split_whitespace();
            match (words.next(), words.next()) {
                (Some(m @ ("GET" | "POST" | "PUT" | "DELETE")), Some(p)) if p.starts_with('/') => {
                    (method, path) = (m.to_owned(), p.to_owned());
                }
                (Some(m @ ("GET" | "POST" | "PUT" | "DELETE")), None) if !path.is_empty() => method = m.to_owned(),
                (Some(suffix), None) if suffix.starts_with('/') && !path.is_empty() => {
                    let first = suffix.split('/').nth(1).unwrap();
                    path = match path.find(&format!("/{first}")) {
                        Some(i) => format!("{}{suffix}", &path[..i]),
                        None => format!("{}{suffix}", &path[..path.rfind('/').unwrap()]),
                    };
                }
                _ => continue,
            }
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// Whether the router serves this operation (any answer but the unknown-endpoint fallbacks).
async fn routed(t: &TestApp, method: &str, path: &str) -> bool {
    let concrete = path
        .replace("{id}", &uuid::Uuid::new_v4().to_string())
        .replace("{code}", "some-code")
        .replace("{user_id}", &uuid::Uuid::new_v4().to_string());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let res = t.http.request(method, t.url(&concrete)).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("");
    !(status == 405 || (status == 404 && code == "not_found"))
}

#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let t = TestApp::spawn().await;
    let res = t.get(None, "/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc, serde_json::to_value(mathia::handlers::http::openapi()).unwrap(), "served as generated");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in
            item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
        {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert!(documented.len() >= 14, "{documented:?}");
    for (method, path) in &documented {
        assert!(routed(&t, method, path).await, "{method} {path} is documented but not routed");
    }
    let mut checked = 0;
    for (method, path) in protocol_endpoints() {
        if path == "/api/openapi.json" {
            continue; // the document itself
        }
        if routed(&t, &method, &path).await {
            checked += 1;
            assert!(
                documented.contains(&(method.clone(), path.clone())),
                "{method} {path} is routed but not documented"
            );
        }
    }
    assert!(checked >= 13, "the protocol's endpoints were found in the router ({checked})");
    // An operation that does not exist is not routed (the probe can tell).
    assert!(!routed(&t, "GET", "/api/does-not-exist").await);
    assert!(!routed(&t, "PUT", "/api/rooms").await);
}
