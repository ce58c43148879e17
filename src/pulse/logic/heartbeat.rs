//! The heartbeat datagram between the two directors: its bytes, its authentication
//! (HMAC-SHA256 over the whole message with the shared key) and the check that decides
//! whether a heartbeat is acted on ([`PeerGuard`]). Pure; the supervisor's socket task
//! sends and receives the bytes.
//!
//! Layout, version 2 (network byte order):
//!
//! ```text
//!  0  magic "LVSH"            4  version (2)        5  kind
//!  6  state                   7  priority
//!  8  counter (u64): strictly increasing per sender (Unix ms based)
//! 16  serial (u64): the sender's lvs.cf serial_no
//! 24  nonce (u64): random, chosen by the sender at each start; never 0
//! 32  echo (u64): the latest nonce the sender took from its peer's heartbeats (0: none)
//! 40  flags (u16): bit 0 = keyed      42  name length (u16)     44  name (UTF-8)
//!  …  HMAC-SHA256 of everything before it (32 bytes), when keyed
//! ```
//!
//! Version 1 (before the nonces: name at 28, no nonce or echo) is refused and counted as
//! "old version": a pair must run the same version.
//!
//! A message is one datagram; the same message goes to the peer's public and private
//! addresses, so the second copy arriving is a duplicate, not an attack.
//!
//! **Replays.** A receiver acts on a heartbeat only when it echoes the receiver's nonce
//! of its current start. A heartbeat recorded before that start cannot carry it, so
//! replaying it after a restart changes nothing, whatever the clocks say. Within one
//! start the counter orders them: one not newer than the last of the same start of the
//! peer is a replay, and (with a key) so is any heartbeat of a start of the peer that a
//! newer start has replaced. Which start of the peer a node echoes, and how a replay is
//! kept from changing it, is [`PeerGuard::check`]'s.
//!
//! **Start-up.** A director that hears a new start of its peer answers at once, so a
//! restarted director and its live peer have verified each other within one
//! `keepalive` and two round trips: well inside the `deadtime` a starting director
//! listens before it takes the addresses (and a director that has not verified its
//! peer by then is alone as far as it can tell, as before).
//!
//! **Clocks.** The counters of a peer are compared with that peer's earlier counters,
//! never with this node's clock, except for one bound: a counter more than
//! [`MAX_AHEAD_MS`] (10 minutes) ahead of this node's clock cannot displace the peer's
//! current start nor, without a key, become the high-water mark. So any skew works;
//! beyond 10 minutes a restarted peer is taken after `deadtime` of silence of its
//! previous start instead of at once (and, without a key, its heartbeats are not
//! ordered).
//!
//! **Without a key** nothing here is authenticated: anyone who can send from the
//! peer's address can forge a heartbeat (hence the standing warning), though one who
//! does not see the traffic cannot echo this node's nonce, so a blind forgery is never
//! acted on. What is bounded is how long one forged datagram counts: a counter far
//! ahead is not taken as the high-water mark, and once [`RESYNC_AFTER`] heartbeats of
//! the peer in a row arrive in order below the mark, it falls back to them. So a single
//! forged counter costs the peer at most `RESYNC_AFTER - 1` heartbeats, never the pair
//! until a restart. Nor does a forged start lock the real one out: without a key no
//! start is ever refused for having been replaced.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::collections::VecDeque;

const MAGIC: &[u8; 4] = b"LVSH";
const VERSION: u8 = 2;
const HEADER: usize = 44;
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
    /// "I am alive, in this state, and I have missed yours: answer at once." Sent while
    /// the peer's heartbeat is overdue, so that one lost datagram is made up for within
    /// a round trip instead of costing a `keepalive` (see [`crate::pulse::logic::ha`]).
    Probe = 2,
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
    /// The sender's nonce of its current start (never 0).
    pub nonce: u64,
    /// The nonce the sender took from this node's heartbeats; 0 before it heard any.
    pub echo: u64,
    pub name: String,
}

/// Why a received datagram was dropped. Each is counted; none is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejected {
    #[error("malformed heartbeat")]
    Malformed,
    #[error("heartbeat of an unknown protocol version")]
    Version,
    /// Version 1: a peer running an older lvs-director.
    #[error("heartbeat of protocol version 1 (an older lvs-director, without replay protection across restarts): upgrade both directors")]
    OldVersion,
    #[error("heartbeat with a wrong authentication code (forged, or a different key)")]
    BadMac,
    #[error("unauthenticated heartbeat while a heartbeat key is configured")]
    Unauthenticated,
    #[error("authenticated heartbeat but no heartbeat key is configured here")]
    NoKeyHere,
    #[error("replayed or stale heartbeat (counter not newer than the last one of the peer, or of a previous start of the peer)")]
    Replayed,
    /// The same message by the other path; normal, not counted as an attack.
    #[error("duplicate heartbeat")]
    Duplicate,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    #[allow(clippy::expect_used)]
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
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.echo.to_be_bytes());
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

    /// Parses and authenticates a datagram. Whether it is acted on is [`PeerGuard`]'s.
    pub fn decode(bytes: &[u8], key: Option<&[u8]>) -> Result<Heartbeat, Rejected> {
        // The version first: an older peer's shorter datagram is told as such, not as
        // malformed.
        if bytes.len() < 5 || &bytes[..4] != MAGIC {
            return Err(Rejected::Malformed);
        }
        match bytes[4] {
            VERSION => {}
            1 => return Err(Rejected::OldVersion),
            _ => return Err(Rejected::Version),
        }
        if bytes.len() < HEADER {
            return Err(Rejected::Malformed);
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let flags = u16_at(40);
        let name_len = usize::from(u16_at(42));
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
            2 => Kind::Probe,
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
        let nonce = u64_at(24);
        if nonce == 0 {
            return Err(Rejected::Malformed);
        }
        Ok(Heartbeat {
            kind,
            state,
            priority: bytes[7],
            counter: u64_at(8),
            serial: u64_at(16),
            nonce,
            echo: u64_at(32),
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

/// A new nonce of the peer whose counter is further ahead of this node's clock than
/// this does not displace the peer's current start (it waits for `deadtime` of silence
/// instead), and without a key it is not taken as the high-water mark: 10 minutes.
pub const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

/// Without a key: heartbeats of the peer that arrive in order below the high-water mark
/// this many times in a row bring the mark down to them.
pub const RESYNC_AFTER: u32 = 2;

/// Previous starts of the peer remembered (with a key), whose heartbeats are refused.
const RETIRED_KEPT: usize = 32;

/// A new random nonce for this start of the director (never 0: 0 means "none").
pub fn new_nonce() -> u64 {
    use rand::RngCore;
    loop {
        let n = rand::rngs::OsRng.next_u64();
        if n != 0 {
            return n;
        }
    }
}

/// One start of the peer, as known by its nonce.
#[derive(Debug, Clone)]
struct PeerStart {
    nonce: u64,
    /// The highest counter seen of this start (its high-water mark).
    high: Option<u64>,
    /// When (monotonic ms) this start last sent a newer counter.
    progress_ms: u64,
    /// Without a key: heartbeats in order below `high` in a row (count, last counter).
    below: Option<(u32, u64)>,
    /// One of its heartbeats echoed this node's nonce: it was sent after this start.
    verified: bool,
}

/// What [`PeerGuard::check`] found of an authentic, well-formed heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// It echoes this node's current nonce and is the newest of the peer's current
    /// start: the state machine takes it.
    pub act: bool,
    /// It made a new start of the peer the one this node echoes: answer at once, so
    /// that the peer can verify this node without waiting for the next `keepalive`.
    pub adopted: bool,
}

/// Decides which heartbeats of the peer are acted on: only those that echo this node's
/// nonce (so none recorded before this node started), and of those only the newest of
/// the peer's current start (so none recorded since). It also chooses which start of
/// the peer this node echoes.
#[derive(Debug, Clone)]
pub struct PeerGuard {
    nonce: u64,
    keyed: bool,
    /// The peer's `deadtime`: a start of the peer silent this long may be replaced by a
    /// start whose counters are lower (its clock was set back across a restart).
    silence_ms: u64,
    peer: Option<PeerStart>,
    /// Starts of the peer replaced by a newer one (with a key only: without one, a
    /// forged nonce must not be able to lock the real one out).
    retired: VecDeque<u64>,
}

impl PeerGuard {
    /// `nonce`: this start's ([`new_nonce`]); `keyed`: heartbeats are authenticated;
    /// `deadtime_ms`: as configured.
    pub fn new(nonce: u64, keyed: bool, deadtime_ms: u64) -> PeerGuard {
        PeerGuard {
            nonce,
            keyed,
            silence_ms: deadtime_ms,
            peer: None,
            retired: VecDeque::new(),
        }
    }

    /// This node's nonce, to send.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The peer's nonce this node echoes (0 before it heard one).
    pub fn echo(&self) -> u64 {
        self.peer.as_ref().map_or(0, |p| p.nonce)
    }

    /// New settings. A change of key (or to or from none) forgets the peer: what was
    /// learnt under the old key proves nothing under the new one. This node's nonce
    /// stays, so a peer that already echoes it is verified again at once.
    pub fn reconfigure(&mut self, keyed: bool, key_changed: bool, deadtime_ms: u64) {
        self.silence_ms = deadtime_ms;
        if key_changed || keyed != self.keyed {
            self.keyed = keyed;
            self.peer = None;
            self.retired.clear();
        }
    }

    /// Checks an authentic (or, without a key, well-formed) heartbeat of the peer at
    /// `now_ms` (monotonic) and `now_unix_ms` (this node's clock).
    ///
    /// Which start of the peer this node echoes: the first one heard; then one whose
    /// counter is newer (not more than [`MAX_AHEAD_MS`] ahead of this node's clock) or
    /// whose predecessor has been silent for `deadtime`. Once the echoed start has been
    /// verified (it echoed this node's nonce), only a start that echoes this node's
    /// nonce too (it was sent after this node started) can replace it, and with a key
    /// the replaced one is refused from then on. So a heartbeat recorded before this
    /// start can stand in for a start never verified, at most, and is never acted on.
    pub fn check(
        &mut self,
        hb: &Heartbeat,
        now_ms: u64,
        now_unix_ms: u64,
    ) -> Result<Verdict, Rejected> {
        if self.keyed && self.retired.contains(&hb.nonce) {
            return Err(Rejected::Replayed);
        }
        let mut adopted = false;
        match &self.peer {
            Some(p) if p.nonce == hb.nonce => {}
            current => {
                let heard_us = hb.echo == self.nonce;
                let take = match current {
                    None => true,
                    Some(p) => {
                        let newer = p.high.is_none_or(|h| hb.counter > h)
                            && hb.counter <= now_unix_ms.saturating_add(MAX_AHEAD_MS);
                        let silent = now_ms >= p.progress_ms + self.silence_ms;
                        (newer || silent) && (heard_us || !p.verified)
                    }
                };
                if !take {
                    // A restarted peer that has not heard this node yet, or a replay of
                    // an earlier start: neither is acted on, and its nonce is not taken.
                    return Ok(Verdict {
                        act: false,
                        adopted: false,
                    });
                }
                if let Some(old) = self.peer.take() {
                    // Only a verified start is surely the peer's and surely over; an
                    // unverified one may be the live peer that had not heard us yet.
                    if self.keyed && old.verified {
                        if self.retired.len() == RETIRED_KEPT {
                            self.retired.pop_front();
                        }
                        self.retired.push_back(old.nonce);
                    }
                }
                self.peer = Some(PeerStart {
                    nonce: hb.nonce,
                    high: None,
                    progress_ms: now_ms,
                    below: None,
                    verified: false,
                });
                adopted = true;
            }
        }
        let keyed = self.keyed;
        // Every path above that does not return leaves a peer start in place.
        #[allow(clippy::expect_used)]
        let p = self.peer.as_mut().expect("set above");
        match p.high {
            Some(h) if hb.counter == h => return Err(Rejected::Duplicate),
            Some(h) if hb.counter < h => {
                // With a key the mark is the peer's own (its counter never goes back
                // within a start): below it is a replay. Without one, the mark may be
                // a forgery: the peer's own heartbeats, arriving in order below it,
                // win after a few.
                let run = match p.below {
                    Some((n, last)) if hb.counter > last => n + 1,
                    Some((n, last)) if hb.counter == last => n,
                    _ => 1,
                };
                p.below = Some((run, hb.counter));
                if keyed || run < RESYNC_AFTER {
                    return Err(Rejected::Replayed);
                }
                p.high = Some(hb.counter);
            }
            _ => {
                // Without a key, a counter far ahead of this node's clock is acted on
                // but not kept as the mark: one forged datagram cannot hold the
                // peer's real ones off for long.
                if keyed || hb.counter <= now_unix_ms.saturating_add(MAX_AHEAD_MS) {
                    p.high = Some(hb.counter);
                }
            }
        }
        p.below = None;
        p.progress_ms = now_ms;
        let act = hb.echo == self.nonce;
        p.verified |= act;
        Ok(Verdict { act, adopted })
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
            nonce: 0xa11ce,
            echo: 0xb0b,
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
            echo: 0,
            ..m
        };
        assert_eq!(
            Heartbeat::decode(&leaving.encode(Some(KEY)), Some(KEY)),
            Ok(leaving)
        );
    }

    #[test]
    fn layout_is_stable() {
        let m = Heartbeat {
            nonce: 0x1112131415161718,
            echo: 0x2122232425262728,
            ..hb(0x0102030405060708)
        };
        let bytes = m.encode(None);
        assert_eq!(&bytes[..8], b"LVSH\x02\x00\x01\x64");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &bytes[24..32],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        assert_eq!(
            &bytes[32..40],
            &[0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]
        );
        assert_eq!(&bytes[40..44], &[0, 0, 0, 5]);
        assert_eq!(&bytes[44..], b"lvs-a");
        let keyed = m.encode(Some(KEY));
        assert_eq!(&keyed[40..42], &[0, 1]);
        assert_eq!(keyed.len(), 44 + 5 + 32);
    }

    #[test]
    fn forged_or_altered_messages_are_rejected() {
        let good = hb(5).encode(Some(KEY));
        // Every single-bit change anywhere is caught: the nonce and the echo are
        // covered by the MAC like the rest.
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
        let mut v3 = hb(5).encode(None);
        v3[4] = 3;
        assert_eq!(Heartbeat::decode(&v3, None), Err(Rejected::Version));
        // No nonce is not a start of anything.
        let none = Heartbeat { nonce: 0, ..hb(5) };
        assert_eq!(
            Heartbeat::decode(&none.encode(Some(KEY)), Some(KEY)),
            Err(Rejected::Malformed)
        );
    }

    /// A version 1 datagram as the previous release sent it (name at 28, no nonce).
    fn version_1(key: Option<&[u8]>) -> Vec<u8> {
        let mut out = b"LVSH\x01\x00\x01\x64".to_vec();
        out.extend_from_slice(&1_790_000_000_000u64.to_be_bytes());
        out.extend_from_slice(&7u64.to_be_bytes());
        out.extend_from_slice(&u16::from(key.is_some()).to_be_bytes());
        out.extend_from_slice(&5u16.to_be_bytes());
        out.extend_from_slice(b"lvs-a");
        if let Some(k) = key {
            let mut m = mac(k);
            m.update(&out);
            out.extend_from_slice(&m.finalize().into_bytes());
        }
        out
    }

    #[test]
    fn version_1_is_refused_as_an_old_version() {
        assert_eq!(
            Heartbeat::decode(&version_1(Some(KEY)), Some(KEY)),
            Err(Rejected::OldVersion)
        );
        assert_eq!(
            Heartbeat::decode(&version_1(None), None),
            Err(Rejected::OldVersion)
        );
        assert!(Rejected::OldVersion.to_string().contains("upgrade"));
    }

    const ME: u64 = 0xb0b;
    const NOW: u64 = 1_790_000_000_000;
    const DEADTIME: u64 = 300;

    /// A heartbeat of the peer's start `nonce`, echoing `echo`, at counter `c`.
    fn of(nonce: u64, echo: u64, c: u64) -> Heartbeat {
        Heartbeat {
            nonce,
            echo,
            ..hb(c)
        }
    }

    const ACT: Result<Verdict, Rejected> = Ok(Verdict {
        act: true,
        adopted: false,
    });
    const HELLO: Result<Verdict, Rejected> = Ok(Verdict {
        act: false,
        adopted: true,
    });
    const HELLO_ACT: Result<Verdict, Rejected> = Ok(Verdict {
        act: true,
        adopted: true,
    });
    const NOT_YET: Result<Verdict, Rejected> = Ok(Verdict {
        act: false,
        adopted: false,
    });

    #[test]
    fn only_heartbeats_echoing_this_start_are_acted_on() {
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        assert_eq!(g.echo(), 0);
        // The peer has not heard this node: its nonce is taken (to be echoed) but what
        // it says is not acted on.
        assert_eq!(g.check(&of(7, 0, NOW), 0, NOW), HELLO);
        assert_eq!(g.echo(), 7);
        assert_eq!(g.check(&of(7, 0xdead, NOW + 100), 100, NOW), NOT_YET);
        // Once it echoes this start, it is.
        assert_eq!(g.check(&of(7, ME, NOW + 200), 200, NOW), ACT);
        assert_eq!(
            g.check(&of(7, ME, NOW + 200), 201, NOW),
            Err(Rejected::Duplicate)
        );
        assert_eq!(
            g.check(&of(7, ME, NOW + 150), 202, NOW),
            Err(Rejected::Replayed)
        );
        assert_eq!(g.check(&of(7, ME, NOW + 300), 300, NOW), ACT);
        // A start that echoes this one directly is taken and acted on at once.
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        assert_eq!(g.check(&of(7, ME, NOW), 0, NOW), HELLO_ACT);
    }

    #[test]
    fn after_a_restart_no_recorded_heartbeat_is_acted_on_whatever_its_counter() {
        // Recorded from the peer before this node restarted: they echo its old nonce.
        let old_me = 0x01d;
        let recorded: Vec<Heartbeat> = (0..24).map(|i| of(7, old_me, NOW + i * 100)).collect();
        let far_future: Vec<Heartbeat> = (0..3)
            .map(|i| of(8, old_me, NOW + 86_400_000 + i))
            .collect();
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        for (i, hb) in recorded.iter().chain(&far_future).enumerate() {
            let v = g.check(hb, 1000 + i as u64 * 100, NOW + 10_000 + i as u64 * 100);
            assert!(!v.is_ok_and(|v| v.act), "replay {i} acted on: {v:?}");
        }
        // And they keep a live peer out for no time at all: its first heartbeat (newer
        // than any of them) takes their place even before it has heard this node.
        let live = 9;
        assert_eq!(
            g.check(&of(live, old_me, NOW + 20_000), 5000, NOW + 20_000),
            HELLO
        );
        assert_eq!(g.echo(), live);
        assert_eq!(
            g.check(&of(live, ME, NOW + 20_100), 5100, NOW + 20_100),
            ACT
        );
        // Once the live one is verified, replays cannot take its place.
        for (i, hb) in recorded.iter().chain(&far_future).enumerate() {
            let v = g.check(hb, 5200 + i as u64, NOW + 20_200);
            assert!(!v.is_ok_and(|v| v.act || v.adopted), "replay {i}: {v:?}");
        }
        assert_eq!(g.echo(), live);
    }

    #[test]
    fn a_restarted_peer_is_taken_once_it_echoes_this_node_and_its_old_start_is_refused() {
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        assert_eq!(g.check(&of(7, ME, NOW), 0, NOW), HELLO_ACT);
        let old = of(7, ME, NOW + 100);
        assert_eq!(g.check(&old, 100, NOW + 100), ACT);
        // The peer restarts: before it heard this node, nothing changes.
        assert_eq!(g.check(&of(8, 0, NOW + 500), 500, NOW + 500), NOT_YET);
        assert_eq!(g.echo(), 7);
        // Once it has, its new start is taken, and acted on.
        assert_eq!(g.check(&of(8, ME, NOW + 600), 600, NOW + 600), HELLO_ACT);
        assert_eq!(g.echo(), 8);
        // Heartbeats of the previous start, recorded while this node ran (they echo
        // it), are a replay now, whenever they come.
        assert_eq!(g.check(&old, 700, NOW + 700), Err(Rejected::Replayed));
        let later = of(7, ME, NOW + 200);
        assert_eq!(g.check(&later, 5000, NOW + 5000), Err(Rejected::Replayed));
    }

    #[test]
    fn a_peer_whose_clock_went_back_is_taken_after_deadtime_of_silence() {
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        assert_eq!(g.check(&of(7, ME, NOW), 0, NOW), HELLO_ACT);
        // Restarted with its clock an hour back: not newer, so not while the old
        // start might still be talking ...
        let back = NOW - 3_600_000;
        assert_eq!(g.check(&of(8, ME, back), 100, NOW), NOT_YET);
        assert_eq!(g.check(&of(8, ME, back + 100), DEADTIME - 1, NOW), NOT_YET);
        // ... but once it has been silent for deadtime.
        assert_eq!(g.check(&of(8, ME, back + 200), DEADTIME, NOW), HELLO_ACT);
        assert_eq!(g.check(&of(8, ME, back + 300), DEADTIME + 100, NOW), ACT);
    }

    #[test]
    fn a_counter_far_ahead_of_this_clock_cannot_displace_the_peer() {
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        // Not verified yet (the peer has not heard this node).
        assert_eq!(g.check(&of(7, 0, NOW), 0, NOW), HELLO);
        let ahead = of(8, 0, NOW + MAX_AHEAD_MS + 1);
        assert_eq!(g.check(&ahead, 10, NOW), NOT_YET);
        assert_eq!(g.echo(), 7);
        // Within the bound (a peer whose clock is ahead) it would be.
        assert_eq!(g.check(&of(8, 0, NOW + MAX_AHEAD_MS), 20, NOW), HELLO);
    }

    #[test]
    fn with_a_key_the_high_water_mark_does_not_resynchronise() {
        let mut g = PeerGuard::new(ME, true, DEADTIME);
        assert_eq!(g.check(&of(7, ME, u64::MAX - 1), 0, NOW), HELLO_ACT);
        for i in 0..10 {
            assert_eq!(
                g.check(&of(7, ME, NOW + i), i, NOW),
                Err(Rejected::Replayed)
            );
        }
    }

    #[test]
    fn without_a_key_one_forged_counter_holds_the_peer_off_for_a_heartbeat_at_most() {
        let mut g = PeerGuard::new(ME, false, DEADTIME);
        assert_eq!(g.check(&of(7, ME, NOW), 0, NOW), HELLO_ACT);
        // Forged with the largest counter: acted on (nothing is authenticated), but
        // not taken as the mark, so the peer's next one goes through.
        assert_eq!(g.check(&of(7, ME, u64::MAX), 50, NOW + 50), ACT);
        assert_eq!(g.check(&of(7, ME, NOW + 100), 100, NOW + 100), ACT);
        // Forged within the bound: it is the mark, and the peer's own heartbeats are
        // refused for RESYNC_AFTER - 1 of them (their second copy by the other path
        // counting once), then taken again.
        let forged = of(7, ME, NOW + MAX_AHEAD_MS);
        assert_eq!(g.check(&forged, 150, NOW + 150), ACT);
        let mut c = NOW + 200;
        for _ in 1..RESYNC_AFTER {
            assert_eq!(g.check(&of(7, ME, c), c - NOW, c), Err(Rejected::Replayed));
            assert_eq!(g.check(&of(7, ME, c), c - NOW, c), Err(Rejected::Replayed));
            c += 100;
        }
        assert_eq!(g.check(&of(7, ME, c), c - NOW, c), ACT);
        assert_eq!(g.check(&of(7, ME, c), c - NOW, c), Err(Rejected::Duplicate));
        assert_eq!(g.check(&of(7, ME, c + 100), 1000, c + 100), ACT);
        // A forged new start needs this node's nonce to displace a verified one, and
        // without a key the displaced start is not locked out: it comes back after
        // deadtime of the forger's silence.
        assert_eq!(g.check(&of(66, 0, NOW + 60_000), 1100, NOW), NOT_YET);
        assert_eq!(g.check(&of(66, ME, NOW + 60_000), 1100, NOW), HELLO_ACT);
        assert_eq!(g.check(&of(7, ME, c + 200), 1200, c + 200), NOT_YET);
        let back = 1100 + DEADTIME;
        assert_eq!(g.check(&of(7, ME, c + 300), back, c + 300), HELLO_ACT);
    }

    #[test]
    fn a_new_key_forgets_the_peer_but_not_this_nonce() {
        let mut g = PeerGuard::new(ME, false, DEADTIME);
        assert_eq!(g.check(&of(7, ME, NOW), 0, NOW), HELLO_ACT);
        g.reconfigure(true, true, DEADTIME);
        assert_eq!(g.nonce(), ME);
        assert_eq!(g.echo(), 0);
        assert_eq!(g.check(&of(7, ME, NOW + 100), 100, NOW), HELLO_ACT);
        // The same settings again change nothing.
        g.reconfigure(true, false, DEADTIME);
        assert_eq!(g.echo(), 7);
    }

    #[test]
    fn nonces_are_random_and_never_zero() {
        let a = new_nonce();
        let b = new_nonce();
        assert!(a != 0 && b != 0 && a != b);
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
