//! The keyed blind index of message search. Each room key version has an index key, derived
//! from the room's data key with HKDF-SHA256 (so it is as secret as the data key, changes with
//! rotation, and differs per room); a term is stored as HMAC-SHA256(index key, term) cut to
//! [`TERM_HASH_BYTES`]. Without the key a hash says nothing about its word; with it, only a
//! guessed word can be tested. Within one room, equal words give equal hashes.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// 128 bits: collisions between a room's terms are out of reach (and a search checks every
/// candidate against its decrypted body anyway).
pub const TERM_HASH_BYTES: usize = 16;

const SALT: &[u8] = b"mathia:blind-index:v1";

/// A room key version's index key.
pub struct BlindIndexKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndexKey(..)")
    }
}

impl BlindIndexKey {
    /// Derives the index key of `(room_id, version)` from that version's data key.
    pub(super) fn derive(data_key: &[u8], room_id: Uuid, version: i32) -> Self {
        let mut info = b"message-terms:".to_vec();
        info.extend_from_slice(room_id.as_bytes());
        info.extend_from_slice(&version.to_be_bytes());
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), data_key).expand(&info, &mut okm).expect("32 bytes is a valid HKDF length");
        let mac = Hmac::<Sha256>::new_from_slice(&okm).expect("HMAC takes any key length");
        okm.fill(0);
        Self { mac }
    }

    /// The stored form of one (already normalised) term.
    pub fn term(&self, term: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(term.as_bytes());
        mac.finalize().into_bytes()[..TERM_HASH_BYTES].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_depend_on_key_room_version_and_term() {
        let room = Uuid::new_v4();
        let k = BlindIndexKey::derive(&[7; 32], room, 1);
        assert_eq!(k.term("budget"), BlindIndexKey::derive(&[7; 32], room, 1).term("budget"));
        assert_eq!(k.term("budget").len(), TERM_HASH_BYTES);
        assert_ne!(k.term("budget"), k.term("budgets"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[8; 32], room, 1).term("budget"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[7; 32], Uuid::new_v4(), 1).term("budget"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[7; 32], room, 2).term("budget"));
        assert!(!k.term("budget").windows(6).any(|w| w == b"budget"));
    }
}
