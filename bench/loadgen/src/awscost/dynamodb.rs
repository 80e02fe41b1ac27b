//! The connections table's items, as DynamoDB bills them: scans the table on the AWS endpoint
//! (moto) and sums the attribute sizes of each connection's and each room's items.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::util::{Error, Result, round};

/// The size DynamoDB bills an attribute value at: strings and binaries by their bytes, numbers
/// by about one byte per two significant digits plus one.
fn value_size(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map(|s| s.len() as u64).unwrap_or(0),
        "B" => inner.as_str().map(|s| (s.len() as u64 * 3) / 4).unwrap_or(0),
        "N" => {
            let digits: String = inner.as_str().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
            significant.div_ceil(2) + 1
        }
        "BOOL" | "NULL" => 1,
        "L" => 3 + inner.as_array().into_iter().flatten().map(|e| 1 + value_size(e)).sum::<u64>(),
        "M" => {
            3 + inner.as_object().into_iter().flatten().map(|(k, e)| k.len() as u64 + 1 + value_size(e)).sum::<u64>()
        }
        "SS" | "NS" | "BS" => {
            inner.as_array().into_iter().flatten().map(|e| e.as_str().unwrap_or("").len() as u64).sum()
        }
        _ => 0,
    }
}

fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(name, v)| name.len() as u64 + value_size(v)).sum()
}

/// Scans the connections table (unsigned JSON requests, as moto accepts them) and sums the item
/// sizes the registry's reads are billed on.
pub(super) async fn registry_items(endpoint: &str, table: &str) -> Result<Value> {
    let http = reqwest::Client::new();
    let mut items: Vec<Map<String, Value>> = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut body = json!({ "TableName": table });
        if let Some(k) = start.take() {
            body["ExclusiveStartKey"] = k;
        }
        let out: Value = http
            .post(endpoint)
            .header("X-Amz-Target", "DynamoDB_20120810.Scan")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::new("http_transport", format!("scan {table}: {e}")))?
            .json()
            .await
            .map_err(|e| Error::new("http_body", format!("scan {table}: {e}")))?;
        let Some(page) = out["Items"].as_array() else {
            return Err(Error::new("http_body", format!("scan {table}: {out}")));
        };
        items.extend(page.iter().filter_map(|i| i.as_object().cloned()));
        match out.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => break,
        }
    }
    let s = |i: &Map<String, Value>, k: &str| i.get(k).and_then(|v| v["S"].as_str()).unwrap_or("").to_owned();
    let stats = |sizes: &[u64]| {
        json!({
            "n": sizes.len(),
            "mean_bytes": round(sizes.iter().sum::<u64>() as f64 / sizes.len().max(1) as f64, 1),
            "max_bytes": sizes.iter().max(),
        })
    };
    let (mut meta, mut room) = (Vec::new(), Vec::new());
    let (mut per_connection, mut per_room): (HashMap<String, u64>, HashMap<String, u64>) = Default::default();
    for i in &items {
        let size = item_size(i);
        *per_connection.entry(s(i, "pk")).or_default() += size;
        let sk = s(i, "sk");
        if sk == "META" {
            meta.push(size);
        } else if sk.starts_with("ROOM#") {
            room.push(size);
            *per_room.entry(s(i, "gsi1pk")).or_default() += size;
        }
    }
    Ok(json!({
        "table": table,
        "items": items.len(),
        "meta": stats(&meta),
        "room": stats(&room),
        // What the two reads of a message return: the sender's connection (its META and room
        // items, by `pk`) and the room's subscriptions (the `gsi1` index).
        "largest_connection_bytes": per_connection.values().max(),
        "largest_room_index_bytes": per_room.values().max(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_sizes() {
        let item = json!({
            "pk": {"S": "CONN#abc"},          // 2 + 8
            "expires_at": {"N": "1767225600"}, // 10 + (8 significant digits / 2 + 1)
            "ok": {"BOOL": true},              // 2 + 1
        });
        assert_eq!(item_size(item.as_object().unwrap()), 10 + 15 + 3);
    }
}
