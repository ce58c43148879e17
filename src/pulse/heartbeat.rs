//! The heartbeat datagram between the two directors: its bytes, its authentication
//! (HMAC-SHA256 over the whole message with the shared key) and the replay check.
//! Pure; the supervisor's socket task sends and receives the bytes.
//!
//! Layout (network byte order):
//!
//! ```text
//!  0  magic "LVSH"            4  version (1)        5  kind
//!  6  state                   7  priority
//!  8  counter (u64): strictly increasing per sender, across restarts (Unix ms based)
//! 16  serial (u64): the sender's lvs.cf serial_no
//! 24  flags (u16): bit 0 = keyed      26  name length (u16)     28  name (UTF-8)
//!  …  HMAC-SHA256 of everything before it (32 bytes), when keyed
//! ```
//!
//! A message is one datagram; the same message goes to the peer's public and private
//! addresses, so the second copy arriving is a duplicate, not an attack.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAGIC: &[u8; 4] = b"LVSH";
const VERSION: u8 = 1;
const HEADER: usize = 28;
const MAC_LEN: usize = 32;
const FLAG_KEYED: u16 = 1;
/// Node names longer than this are refused (a hostname is at most 253 bytes).
pub const MAX_NAME: usize = 255;

/// Why a heartbeat was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The periodic "I am alive, in this state".
    Alive = 0,
    /// Sent on a clean stop: the peer takes over at once instead of waiting `deadtime`.
    Leaving = 1,
}

/// The sender's role as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Up, not holding the virtual addresses.
    Standby = 0,
    /// Holding the virtual addresses.
    Active = 1,
    /// Up but unable to serve (a local fault: link down, IPVS failed, a local check).
    Fault = 2,
    /// Up and able, but handed over on purpose by an administrator: the peer serves.
    Yielding = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub kind: Kind,
    pub state: NodeState,
    /// Higher wins when both want to be active; local checks lower it.
    pub priority: u8,
    pub counter: u64,
    pub serial: u64,
    pub name: String,
}

/// Why a received datagram was dropped. Each is counted; none is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejected {
    #[error("malformed heartbeat")]
    Malformed,
    #[error("heartbeat of an unknown protocol version")]
    Version,
    #[error("heartbeat with a wrong authentication code (forged, or a different key)")]
    BadMac,
    #[error("unauthenticated heartbeat while a heartbeat key is configured")]
    Unauthenticated,
    #[error("authenticated heartbeat but no heartbeat key is configured here")]
    NoKeyHere,
    #[error("replayed or stale heartbeat (counter not newer than the last one accepted)")]
    Replayed,
    /// The same message by the other path; normal, not counted as an attack.
    #[error("duplicate heartbeat")]
    Duplicate,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

impl Heartbeat {
    /// The datagram, authenticated when `key` is given.
    pub fn encode(&self, key: Option<&[u8]>) -> Vec<u8> {
        let name = &self.name.as_bytes()[..self.name.len().min(MAX_NAME)];
        let mut out = Vec::with_capacity(HEADER + name.len() + MAC_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.push(self.state as u8);
        out.push(self.priority);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.serial.to_be_bytes());
        let flags = if key.is_some() { FLAG_KEYED } else { 0 };
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        if let Some(key) = key {
            let mut m = mac(key);
            m.update(&out);
            out.extend_from_slice(&m.finalize().into_bytes());
        }
        out
    }

    /// Parses and authenticates a datagram. The replay check is [`ReplayGuard`]'s.
    pub fn decode(bytes: &[u8], key: Option<&[u8]>) -> Result<Heartbeat, Rejected> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(Rejected::Malformed);
        }
        if bytes[4] != VERSION {
            return Err(Rejected::Version);
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let flags = u16_at(24);
        let name_len = usize::from(u16_at(26));
        let keyed = flags & FLAG_KEYED != 0;
        let body = HEADER + name_len;
        let total = body + if keyed { MAC_LEN } else { 0 };
        if name_len > MAX_NAME || bytes.len() != total || flags & !FLAG_KEYED != 0 {
            return Err(Rejected::Malformed);
        }
        match (keyed, key) {
            (true, Some(key)) => {
                let mut m = mac(key);
                m.update(&bytes[..body]);
                // Constant-time comparison.
                m.verify_slice(&bytes[body..])
                    .map_err(|_| Rejected::BadMac)?;
            }
            (true, None) => return Err(Rejected::NoKeyHere),
            (false, Some(_)) => return Err(Rejected::Unauthenticated),
            (false, None) => {}
        }
        let kind = match bytes[5] {
            0 => Kind::Alive,
            1 => Kind::Leaving,
            _ => return Err(Rejected::Malformed),
        };
        let state = match bytes[6] {
            0 => NodeState::Standby,
            1 => NodeState::Active,
            2 => NodeState::Fault,
            3 => NodeState::Yielding,
            _ => return Err(Rejected::Malformed),
        };
        let name = std::str::from_utf8(&bytes[HEADER..body]).map_err(|_| Rejected::Malformed)?;
        Ok(Heartbeat {
            kind,
            state,
            priority: bytes[7],
            counter: u64_at(8),
            serial: u64_at(16),
            name: name.to_string(),
        })
    }
}

/// The sender's counter: Unix milliseconds, but never equal to or below the last one,
/// so it keeps increasing across restarts (the clock moves on) and within a
/// millisecond.
#[derive(Debug, Default)]
pub struct Counter {
    last: u64,
}

impl Counter {
    pub fn next(&mut self, now_unix_ms: u64) -> u64 {
        self.last = now_unix_ms.max(self.last + 1);
        self.last
    }
}

/// Accepts each heartbeat once and only if newer than every one accepted before.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    last: Option<u64>,
}

impl ReplayGuard {
    pub fn check(&mut self, hb: &Heartbeat) -> Result<(), Rejected> {
        match self.last {
            Some(last) if hb.counter == last => Err(Rejected::Duplicate),
            Some(last) if hb.counter < last => Err(Rejected::Replayed),
            _ => {
                self.last = Some(hb.counter);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(counter: u64) -> Heartbeat {
        Heartbeat {
            kind: Kind::Alive,
            state: NodeState::Active,
            priority: 100,
            counter,
            serial: 2026112201,
            name: "lvs-a".into(),
        }
    }

    const KEY: &[u8] = b"correct horse battery staple";

    #[test]
    fn round_trips_with_and_without_a_key() {
        let m = hb(1_790_000_000_000);
        assert_eq!(
            Heartbeat::decode(&m.encode(Some(KEY)), Some(KEY)),
            Ok(m.clone())
        );
        assert_eq!(Heartbeat::decode(&m.encode(None), None), Ok(m.clone()));
        let leaving = Heartbeat {
            kind: Kind::Leaving,
            state: NodeState::Fault,
            ..m
        };
        assert_eq!(
            Heartbeat::decode(&leaving.encode(Some(KEY)), Some(KEY)),
            Ok(leaving)
        );
    }

    #[test]
    fn layout_is_stable() {
        let bytes = hb(0x0102030405060708).encode(None);
        assert_eq!(&bytes[..8], b"LVSH\x01\x00\x01\x64");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[24..28], &[0, 0, 0, 5]);
        assert_eq!(&bytes[28..], b"lvs-a");
        assert_eq!(hb(1).encode(Some(KEY)).len(), 28 + 5 + 32);
    }

    #[test]
    fn forged_or_altered_messages_are_rejected() {
        let good = hb(5).encode(Some(KEY));
        // Every single-bit change anywhere is caught.
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Heartbeat::decode(&b, Some(KEY)).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        assert_eq!(
            Heartbeat::decode(&good, Some(b"another key")),
            Err(Rejected::BadMac)
        );
        assert_eq!(
            Heartbeat::decode(&hb(5).encode(None), Some(KEY)),
            Err(Rejected::Unauthenticated)
        );
        assert_eq!(Heartbeat::decode(&good, None), Err(Rejected::NoKeyHere));
        // Piranha's 4-byte heartbeat and garbage are malformed, not a panic.
        for junk in [&b"\x01\x00\x00\x00"[..], b"", b"LVSH", &good[..40]] {
            assert!(Heartbeat::decode(junk, Some(KEY)).is_err());
        }
        let mut v2 = hb(5).encode(None);
        v2[4] = 2;
        assert_eq!(Heartbeat::decode(&v2, None), Err(Rejected::Version));
    }

    #[test]
    fn replays_and_duplicates_are_dropped() {
        let mut g = ReplayGuard::default();
        assert_eq!(g.check(&hb(10)), Ok(()));
        assert_eq!(g.check(&hb(10)), Err(Rejected::Duplicate));
        assert_eq!(g.check(&hb(9)), Err(Rejected::Replayed));
        assert_eq!(g.check(&hb(11)), Ok(()));
        assert_eq!(g.check(&hb(10)), Err(Rejected::Replayed));
    }

    #[test]
    fn the_counter_never_goes_back() {
        let mut c = Counter::default();
        assert_eq!(c.next(1000), 1000);
        assert_eq!(c.next(1000), 1001);
        assert_eq!(c.next(900), 1002); // clock stepped back
        assert_eq!(c.next(5000), 5000);
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Heartbeat::decode(&bytes, Some(KEY));
            let _ = Heartbeat::decode(&bytes, None);
        }
    }
}
