//! The connection registry in memory, indexed both ways so room fan-out needs no scan.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::{
    domain::ConnectionId,
    ports::{ConnectionInfo, Connections, RegistryError, RoomConnection},
};

#[derive(Default)]
struct State {
    connections: HashMap<ConnectionId, ConnectionInfo>,
    rooms: HashMap<Uuid, HashSet<ConnectionId>>,
    users: HashMap<Uuid, HashSet<ConnectionId>>,
    /// Sessions logged out lately (the token's hash), until when they are remembered. Every
    /// logout that can reach these connections runs in this process, so the handshake asks here
    /// rather than Redis whether one ended while it registered.
    ended: HashMap<String, Instant>,
}

#[derive(Default)]
pub struct InMemoryConnections {
    state: RwLock<State>,
}

impl InMemoryConnections {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Connections for InMemoryConnections {
    async fn register(&self, info: ConnectionInfo) -> Result<(), RegistryError> {
        let mut s = self.state.write().await;
        s.users.entry(info.user_id).or_default().insert(info.id.clone());
        for room in &info.rooms {
            s.rooms.entry(*room).or_default().insert(info.id.clone());
        }
        s.connections.insert(info.id.clone(), info);
        Ok(())
    }

    async fn remove(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        let mut s = self.state.write().await;
        let Some(info) = s.connections.remove(id) else {
            return Ok(None);
        };
        for room in &info.rooms {
            if let Some(set) = s.rooms.get_mut(room) {
                set.remove(id);
                if set.is_empty() {
                    s.rooms.remove(room);
                }
            }
        }
        if let Some(set) = s.users.get_mut(&info.user_id) {
            set.remove(id);
            if set.is_empty() {
                s.users.remove(&info.user_id);
            }
        }
        Ok(Some(info))
    }

    async fn get(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError> {
        Ok(self.state.read().await.connections.get(id).cloned())
    }

    async fn join(&self, id: &ConnectionId, room_id: Uuid) -> Result<bool, RegistryError> {
        let mut s = self.state.write().await;
        let Some(info) = s.connections.get_mut(id) else {
            return Ok(false);
        };
        info.rooms.insert(room_id);
        s.rooms.entry(room_id).or_default().insert(id.clone());
        Ok(true)
    }

    async fn leave(&self, id: &ConnectionId, room_id: Uuid) -> Result<(), RegistryError> {
        let mut s = self.state.write().await;
        if let Some(info) = s.connections.get_mut(id) {
            info.rooms.remove(&room_id);
        }
        if let Some(set) = s.rooms.get_mut(&room_id) {
            set.remove(id);
            if set.is_empty() {
                s.rooms.remove(&room_id);
            }
        }
        Ok(())
    }

    async fn in_room(&self, room_id: Uuid) -> Result<Vec<RoomConnection>, RegistryError> {
        let s = self.state.read().await;
        Ok(s.rooms
            .get(&room_id)
            .into_iter()
            .flatten()
            .filter_map(|id| s.connections.get(id))
            .map(|c| RoomConnection {
                id: c.id.clone(),
                user_id: c.user_id,
                display_name: c.display_name.clone(),
                endpoint: c.endpoint.clone(),
            })
            .collect())
    }

    async fn of_user(&self, user_id: Uuid) -> Result<Vec<ConnectionInfo>, RegistryError> {
        let s = self.state.read().await;
        Ok(s.users.get(&user_id).into_iter().flatten().filter_map(|id| s.connections.get(id).cloned()).collect())
    }

    async fn rename(&self, user_id: Uuid, display_name: &str) -> Result<HashSet<Uuid>, RegistryError> {
        let mut s = self.state.write().await;
        let State { connections, users, .. } = &mut *s;
        let mut rooms = HashSet::new();
        for id in users.get(&user_id).into_iter().flatten() {
            if let Some(c) = connections.get_mut(id) {
                c.display_name = display_name.to_owned();
                rooms.extend(&c.rooms);
            }
        }
        Ok(rooms)
    }

    async fn older_than(&self, cutoff: DateTime<Utc>) -> Result<Vec<ConnectionId>, RegistryError> {
        let s = self.state.read().await;
        Ok(s.connections.values().filter(|c| c.connected_at < cutoff).map(|c| c.id.clone()).collect())
    }

    async fn mark_session_ended(&self, session: &str, ttl: Duration) {
        let now = Instant::now();
        let mut s = self.state.write().await;
        s.ended.retain(|_, until| *until > now);
        s.ended.insert(session.to_owned(), now + ttl);
    }

    async fn session_ended(&self, session: &str) -> Option<bool> {
        let s = self.state.read().await;
        Some(s.ended.get(session).is_some_and(|until| *until > Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, user_id: Uuid, room: Option<Uuid>) -> ConnectionInfo {
        ConnectionInfo {
            id: ConnectionId::new(id),
            user_id,
            display_name: format!("user {id}"),
            rooms: room.into_iter().collect(),
            connected_at: Utc::now(),
            endpoint: None,
            session: None,
        }
    }

    #[tokio::test]
    async fn a_rename_reaches_every_connection_of_that_user_only() {
        let registry = InMemoryConnections::new();
        let (ana, ben, room) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        registry.register(conn("a1", ana, Some(room))).await.unwrap();
        registry.register(conn("a2", ana, None)).await.unwrap();
        registry.register(conn("b1", ben, Some(room))).await.unwrap();
        assert_eq!(registry.rename(ana, "Ana Lima").await.unwrap(), HashSet::from([room]));
        let names: HashSet<_> =
            registry.in_room(room).await.unwrap().into_iter().map(|c| (c.id.to_string(), c.display_name)).collect();
        assert_eq!(names, HashSet::from([("a1".into(), "Ana Lima".into()), ("b1".into(), "user b1".into())]));
        assert_eq!(registry.get(&ConnectionId::new("a2")).await.unwrap().unwrap().display_name, "Ana Lima");
        registry.remove(&ConnectionId::new("b1")).await.unwrap();
        assert!(registry.rename(ben, "Ben B.").await.unwrap().is_empty());
        assert!(registry.get(&ConnectionId::new("b1")).await.unwrap().is_none(), "a rename brings nothing back");
    }

    #[tokio::test]
    async fn a_logout_mark_is_kept_for_its_time_and_for_its_session_only() {
        let registry = InMemoryConnections::new();
        assert_eq!(registry.session_ended("a").await, Some(false));
        registry.mark_session_ended("a", Duration::from_secs(60)).await;
        registry.mark_session_ended("gone", Duration::ZERO).await;
        assert_eq!(registry.session_ended("a").await, Some(true));
        assert_eq!(registry.session_ended("b").await, Some(false));
        assert_eq!(registry.session_ended("gone").await, Some(false), "past its time");
        // Marks past their time are dropped when the next one is made.
        registry.mark_session_ended("c", Duration::from_secs(60)).await;
        assert_eq!(registry.state.read().await.ended.len(), 2);
    }
}
