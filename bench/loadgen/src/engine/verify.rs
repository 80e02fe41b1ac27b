//! The delivery check after a run: pages through every room's history (forward from the
//! message that was newest before the run) and looks for each acknowledged message id, counting
//! missing messages, gaps in `seq` and duplicated `client_msg_id`s.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use uuid::Uuid;

use super::Harness;
use crate::{
    api::{Api, Session},
    util::Result,
};

impl Harness {
    /// Pages through every room's history and looks for each acknowledged message id.
    pub async fn verify(&self) -> Value {
        let mut acked: HashMap<u32, HashSet<Uuid>> = HashMap::new();
        for shard in &self.shared.shards {
            for (r, id) in &shard.lock().unwrap().acked_ids {
                acked.entry(*r).or_default().insert(*id);
            }
        }
        let total_acked: usize = acked.values().map(HashSet::len).sum();
        let mut found_total = 0usize;
        let mut history_total = 0usize;
        let mut missing: Vec<String> = Vec::new();
        let mut missing_n = 0usize;
        let mut history_seq_gaps = 0i64;
        let mut duplicates = 0usize;
        let mut failures = Vec::new();
        for (r, room) in self.rooms.iter().enumerate() {
            let ids = match history(&self.api, &room.owner, room.id, room.anchor).await {
                Ok(h) => h,
                Err(e) => {
                    failures.push(format!("room {r}: {e}"));
                    continue;
                }
            };
            history_total += ids.len();
            let mut seqs: Vec<i64> = ids.iter().map(|m| m.seq).collect();
            seqs.sort_unstable();
            history_seq_gaps += seqs.windows(2).map(|w| (w[1] - w[0] - 1).max(0)).sum::<i64>();
            let mut by_cmid: HashSet<(String, String)> = HashSet::new();
            for msg in &ids {
                if let Some(c) = &msg.cmid
                    && !by_cmid.insert((msg.author.clone(), c.clone()))
                {
                    duplicates += 1;
                }
            }
            let found: HashSet<Uuid> = ids.iter().map(|m| m.id).collect();
            if let Some(want) = acked.get(&(r as u32)) {
                for id in want {
                    if found.contains(id) {
                        found_total += 1;
                    } else {
                        missing_n += 1;
                        if missing.len() < 20 {
                            missing.push(id.to_string());
                        }
                    }
                }
            }
        }
        json!({
            "acked": total_acked,
            "found": found_total,
            "missing": missing_n,
            "missing_ids": missing,
            "history_messages": history_total,
            "history_seq_gaps": history_seq_gaps,
            "duplicate_client_msg_ids": duplicates,
            "failures": failures,
            "ok": failures.is_empty() && missing_n == 0,
        })
    }
}

struct HistMsg {
    id: Uuid,
    seq: i64,
    author: String,
    cmid: Option<String>,
}

/// Every message after `anchor` (or the whole room), retrying each page for up to 60 s.
async fn history(api: &Api, s: &Session, room: Uuid, anchor: Option<Uuid>) -> Result<Vec<HistMsg>> {
    let mut out = Vec::new();
    let forward = anchor.is_some();
    let mut cursor = anchor;
    loop {
        let c = cursor.map(|id| (if forward { "after" } else { "before" }, id));
        let started = Instant::now();
        let page = loop {
            match api.history(s, room, c).await {
                Ok(v) => break v,
                Err(e) if started.elapsed() < Duration::from_secs(60) => {
                    eprintln!("verify: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e),
            }
        };
        for m in page["messages"].as_array().into_iter().flatten() {
            let Some(id) = m["id"].as_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            out.push(HistMsg {
                id,
                seq: m["seq"].as_i64().unwrap_or(0),
                author: m["author"]["id"].as_str().unwrap_or("").to_owned(),
                cmid: m["client_msg_id"].as_str().map(str::to_owned),
            });
        }
        let next = if forward { &page["next_after"] } else { &page["next_before"] };
        match next.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => cursor = Some(id),
            None => break,
        }
    }
    Ok(out)
}
