//! Checks an AWS Signature Version 4 the way API Gateway's management API does: the request is
//! signed again with the expected credentials (by `aws-sigv4`, the SDK's own signer) over the
//! headers the caller said it signed, and the two signatures must match.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use axum::http::{HeaderMap, Method};

/// How far a request's `X-Amz-Date` may be from now.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The credentials a signature must be made with.
#[derive(Clone)]
pub struct Expected {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("Signature expired")]
    Expired,
    #[error("The request signature we calculated does not match the signature you provided.")]
    Mismatch,
}

struct Authorization<'a> {
    access_key_id: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(header: &str) -> Option<Authorization<'_>> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    // AKID/20260101/us-east-1/execute-api/aws4_request
    let mut scope = credential?.split('/');
    let access_key_id = scope.next()?;
    let _date = scope.next()?;
    let region = scope.next()?;
    let service = scope.next()?;
    Some(Authorization {
        access_key_id,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

fn amz_date(headers: &HeaderMap) -> Option<SystemTime> {
    let text = headers.get("x-amz-date")?.to_str().ok()?;
    let at = chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ").ok()?.and_utc();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?))
}

/// Accepts the request only if it is signed with `expected`'s credentials.
pub fn verify(
    expected: &Expected,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Rejected> {
    let header = headers.get("authorization").and_then(|h| h.to_str().ok()).ok_or(Rejected::Missing)?;
    let auth = parse(header).ok_or(Rejected::Missing)?;
    if auth.access_key_id != expected.access_key_id {
        return Err(Rejected::UnknownKey);
    }
    let time = amz_date(headers).ok_or(Rejected::Missing)?;
    let skew = SystemTime::now().duration_since(time).unwrap_or_else(|ahead| ahead.duration());
    if skew > MAX_SKEW {
        return Err(Rejected::Expired);
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let signed: Vec<(&str, &str)> = auth
        .signed_headers
        .iter()
        .filter(|name| **name != "x-amz-date")
        .filter_map(|name| Some((*name, headers.get(*name)?.to_str().ok()?)))
        .collect();
    let uri = format!("http://{host}{path_and_query}");
    let request = SignableRequest::new(method.as_str(), uri, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| Rejected::Mismatch)?;
    let identity =
        Credentials::new(&expected.access_key_id, &expected.secret_access_key, None, None, "emulator").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| Rejected::Mismatch)?
        .into();
    let (_, signature) = sign(request, &params).map_err(|_| Rejected::Mismatch)?.into_parts();
    if signature == auth.signature { Ok(()) } else { Err(Rejected::Mismatch) }
}
