//! The connection registry on DynamoDB, in one table (`pk`, `sk`) with one GSI (`gsi1pk`,
//! `gsi1sk`) and a TTL attribute (`expires_at`), so dead entries expire on their own:
//!
//! | item | pk | sk | gsi1pk | gsi1sk |
//! | --- | --- | --- | --- | --- |
//! | a connection | `CONN#<id>` | `META` | `USER#<user>` | `CONN#<id>` |
//! | its subscription to a room | `CONN#<id>` | `ROOM#<room>` | `ROOM#<room>` | `CONN#<id>` |
//!
//! "Connections in a room" and "connections of a user" are GSI queries, never scans.

use std::{collections::HashSet, time::Duration};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    error::DisplayErrorContext,
    types::{AttributeValue, DeleteRequest, WriteRequest},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::ConnectionId,
    ports::{ConnectionInfo, Connections, RegistryError, RoomConnection},
};

pub struct DynamoConnections {
    client: Client,
    table: String,
    /// How long an entry lives without being refreshed (API Gateway closes sockets at 2 h).
    ttl: Duration,
}

type Item = std::collections::HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn err(e: impl std::fmt::Display) -> RegistryError {
    RegistryError(e.to_string())
}

impl DynamoConnections {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), ttl: Duration::from_secs(3 * 3600) }
    }

    fn expires_at(&self) -> AttributeValue {
        AttributeValue::N((Utc::now().timestamp() + self.ttl.as_secs() as i64).to_string())
    }

    async fn items_of(&self, id: &ConnectionId) -> Result<Vec<Item>, RegistryError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("CONN#{id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err(DisplayErrorContext(e)))?;
        Ok(out.items.unwrap_or_default())
    }

    async fn gsi(&self, key: String) -> Result<Vec<Item>, RegistryError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :k")
                .expression_attribute_values(":k", s(key.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| err(DisplayErrorContext(e)))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    fn info_from(items: &[Item]) -> Option<ConnectionInfo> {
        let meta = items.iter().find(|i| get_s(i, "sk") == Some("META"))?;
        let rooms =
            items.iter().filter_map(|i| get_s(i, "sk")?.strip_prefix("ROOM#")?.parse().ok()).collect::<HashSet<Uuid>>();
        Some(ConnectionInfo {
            id: ConnectionId::new(get_s(meta, "connection_id")?),
            user_id: get_s(meta, "user_id")?.parse().ok()?,
            display_name: get_s(meta, "display_name").unwrap_or_default().to_owned(),
            rooms,
            connected_at: get_s(meta, "connected_at")?.parse().ok()?,
            endpoint: get_s(meta, "endpoint").map(str::to_owned),
            session: get_s(meta, "session").map(str::to_owned),
        })
    }
}

#[async_trait]
impl Connections for DynamoConnections {
    async fn register(&self, info: ConnectionInfo) -> Result<(), RegistryError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CONN#{}", info.id)))
            .item("sk", s("META"))
            .item("gsi1pk", s(format!("USER#{}", info.user_id)))
            .item("gsi1sk", s(format!("CONN#{}", info.id)))
            .item("connection_id", s(info.id.as_str()))
            .item("user_id", s(info.user_id.to_string()))
            .item("display_name", s(&info.display_name))
            .item("connected_at", s(info.connected_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
            .item("expires_at", self.expires_at());
        if let Some(endpoint) = &info.endpoint {
            put = put.item("endpoint", s(endpoint));
        }
        if let Some(session) = &info.session {
            put = put.item("session", s(session));
        }
        put.send().await.map_err(|e| err(DisplayErrorContext(e)))?;
        for room in &info.rooms {
            self.join(&info.id, *room).await?;
        }
        Ok(())
    }

    async fn remove(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        let items = self.items_of(id).await?;
        let info = Self::info_from(&items);
        for chunk in items.chunks(25) {
            let deletes = chunk
                .iter()
                .filter_map(|i| {
                    let request = DeleteRequest::builder()
                        .key("pk", i.get("pk")?.clone())
                        .key("sk", i.get("sk")?.clone())
                        .build()
                        .ok()?;
                    Some(WriteRequest::builder().delete_request(request).build())
                })
                .collect::<Vec<_>>();
            self.client
                .batch_write_item()
                .request_items(&self.table, deletes)
                .send()
                .await
                .map_err(|e| err(DisplayErrorContext(e)))?;
        }
        Ok(info)
    }

    async fn get(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        Ok(Self::info_from(&self.items_of(id).await?))
    }

    async fn join(&self, id: &ConnectionId, room_id: Uuid) -> Result<bool, RegistryError> {
        let Some(info) = self.get(id).await? else {
            return Ok(false);
        };
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CONN#{id}")))
            .item("sk", s(format!("ROOM#{room_id}")))
            .item("gsi1pk", s(format!("ROOM#{room_id}")))
            .item("gsi1sk", s(format!("CONN#{id}")))
            .item("connection_id", s(id.as_str()))
            .item("user_id", s(info.user_id.to_string()))
            .item("display_name", s(&info.display_name))
            .item("expires_at", self.expires_at());
        if let Some(endpoint) = &info.endpoint {
            put = put.item("endpoint", s(endpoint));
        }
        put.send().await.map_err(|e| err(DisplayErrorContext(e)))?;
        Ok(true)
    }

    async fn leave(&self, id: &ConnectionId, room_id: Uuid) -> Result<(), RegistryError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("CONN#{id}")))
            .key("sk", s(format!("ROOM#{room_id}")))
            .send()
            .await
            .map_err(|e| err(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn in_room(&self, room_id: Uuid) -> Result<Vec<RoomConnection>, RegistryError> {
        Ok(self
            .gsi(format!("ROOM#{room_id}"))
            .await?
            .iter()
            .filter_map(|i| {
                Some(RoomConnection {
                    id: ConnectionId::new(get_s(i, "connection_id")?),
                    user_id: get_s(i, "user_id")?.parse().ok()?,
                    display_name: get_s(i, "display_name").unwrap_or_default().to_owned(),
                    endpoint: get_s(i, "endpoint").map(str::to_owned),
                })
            })
            .collect())
    }

    async fn of_user(&self, user_id: Uuid) -> Result<Vec<ConnectionInfo>, RegistryError> {
        let mut out = Vec::new();
        for meta in self.gsi(format!("USER#{user_id}")).await? {
            if let Some(id) = get_s(&meta, "connection_id")
                && let Some(info) = self.get(&ConnectionId::new(id)).await?
            {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Each of the user's items (the connection and its room subscriptions, which carry the name
    /// for fan-out) is updated only if it still exists, so a connection removed meanwhile is not
    /// brought back.
    async fn rename(&self, user_id: Uuid, display_name: &str) -> Result<HashSet<Uuid>, RegistryError> {
        let mut rooms = HashSet::new();
        for meta in self.gsi(format!("USER#{user_id}")).await? {
            let Some(id) = get_s(&meta, "connection_id") else { continue };
            let items = self.items_of(&ConnectionId::new(id)).await?;
            rooms.extend(Self::info_from(&items).map(|info| info.rooms).unwrap_or_default());
            for item in items {
                let (Some(pk), Some(sk)) = (item.get("pk"), item.get("sk")) else { continue };
                let updated = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", pk.clone())
                    .key("sk", sk.clone())
                    .update_expression("SET display_name = :name")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":name", s(display_name))
                    .send()
                    .await;
                if let Err(e) = updated {
                    let e = e.into_service_error();
                    if !e.is_conditional_check_failed_exception() {
                        return Err(err(e));
                    }
                }
            }
        }
        Ok(rooms)
    }

    async fn older_than(&self, cutoff: DateTime<Utc>) -> Result<Vec<ConnectionId>, RegistryError> {
        // Only the scheduler asks, once a minute; TTL deletes what this sweep misses.
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :meta AND connected_at < :cutoff")
                .expression_attribute_values(":meta", s("META"))
                .expression_attribute_values(":cutoff", s(cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| err(DisplayErrorContext(e)))?;
            ids.extend(
                out.items.unwrap_or_default().iter().filter_map(|i| get_s(i, "connection_id").map(ConnectionId::new)),
            );
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }
}
