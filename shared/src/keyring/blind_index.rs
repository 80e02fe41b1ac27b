//! The keyed blind index of message search. Each room key version has an index key, derived
//! from the room's data key with HKDF-SHA256 (so it is as secret as the data key, changes with
//! rotation, and differs per room); a term is stored as HMAC-SHA256(index key, term) cut to
//! [`TERM_HASH_BYTES`], read as a big-endian `i64` (Postgres's `bigint`). Without the key a hash
//! says nothing about its word; with it, only a guessed word can be tested. Within one room,
//! equal words give equal hashes.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// 64 bits: a room with a million distinct words has about one chance in 37 million of two of
/// them sharing a hash, and a search checks every candidate against its decrypted body anyway.
pub const TERM_HASH_BYTES: usize = 8;

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
    pub fn term(&self, term: &str) -> i64 {
        let mut mac = self.mac.clone();
        mac.update(term.as_bytes());
        let mut cut = [0u8; TERM_HASH_BYTES];
        cut.copy_from_slice(&mac.finalize().into_bytes()[..TERM_HASH_BYTES]);
        i64::from_be_bytes(cut)
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
        // The first bytes of HMAC-SHA256, big-endian (as migration 0021 cut the older 16-byte hashes).
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"budget");
        let full = mac.finalize().into_bytes();
        let mut probe = BlindIndexKey::derive(&[7; 32], room, 1);
        probe.mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        assert_eq!(probe.term("budget").to_be_bytes(), full[..TERM_HASH_BYTES]);
        assert_ne!(k.term("budget"), k.term("budgets"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[8; 32], room, 1).term("budget"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[7; 32], Uuid::new_v4(), 1).term("budget"));
        assert_ne!(k.term("budget"), BlindIndexKey::derive(&[7; 32], room, 2).term("budget"));
        assert!(!k.term("budget").to_be_bytes().windows(6).any(|w| w == b"budget"));
    }
}
